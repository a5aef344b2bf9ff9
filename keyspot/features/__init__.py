"""The features: the spec and its reference implementation here, the
features stage that runs it over a dataset in extract.py.

`FeatureSpec` (saved as data/features/spec.json) is the one description of
the features that training, serving, the C export and the firmware share.
`compute()` is the reference: int16 PCM in, normalised float32 features out.
It uses numpy only, so that the serving container can run it and the C
frontend can be checked against it; the numbers match librosa's melspectrogram
(center=False, slaney mel, periodic Hann) followed by an orthonormal DCT-II.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import scipy.fft

SPEC_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    kind: str                 # "mfcc" or "log_mel"
    sample_rate: int
    clip_samples: int
    window_samples: int
    hop_samples: int
    fft_size: int
    mel_bins: int
    mel_fmin: float
    mel_fmax: float
    num_mfcc: int
    log_floor: float
    labels: tuple[str, ...]
    # Per-coefficient statistics of the training split; features are
    # (x - mean) / std. Empty until measured on the training data.
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    version: int = SPEC_VERSION

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.hop_samples

    @property
    def num_coefficients(self) -> int:
        return self.num_mfcc if self.kind == "mfcc" else self.mel_bins

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_frames, self.num_coefficients)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["num_frames"] = self.num_frames
        data["num_coefficients"] = self.num_coefficients
        return json.dumps(data, indent=2) + "\n"

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> FeatureSpec:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no feature spec; run `dvc repro features`") from None
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"{path}: spec version {data.get('version')!r}, "
                             f"this keyspot reads {SPEC_VERSION}; rerun `dvc repro features`")
        fields = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in fields}
        for key in ("labels", "mean", "std"):
            data[key] = tuple(data[key])
        return cls(**data)


def hz_to_mel(hz):
    """Slaney's auditory-toolbox mel scale (librosa's default, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz,
                    min_log_mel + np.log(np.maximum(hz, 1e-12) / min_log_hz) / logstep, mel)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    hz = f_sp * mel
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), hz)


def window(spec: FeatureSpec) -> np.ndarray:
    """Periodic Hann of the window length, zero-padded to the FFT size, centred."""
    n = spec.window_samples
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    left = (spec.fft_size - n) // 2
    return np.pad(hann, (left, spec.fft_size - n - left))


def mel_weights(spec: FeatureSpec) -> np.ndarray:
    """(mel_bins, fft_size // 2 + 1) Slaney-normalised triangular filters."""
    fft_freqs = np.linspace(0, spec.sample_rate / 2, spec.fft_size // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(spec.mel_fmin), hz_to_mel(spec.mel_fmax),
                                  spec.mel_bins + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


def dct_matrix(spec: FeatureSpec) -> np.ndarray:
    """(num_mfcc, mel_bins) orthonormal DCT-II, as scipy.fft.dct(norm='ortho')."""
    n = spec.mel_bins
    k = np.arange(spec.num_mfcc)[:, None]
    m = np.arange(n)[None, :]
    basis = np.cos(np.pi * k * (2 * m + 1) / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis


def frames(pcm: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """(batch, samples) -> (batch, num_frames, window_samples), a strided view."""
    return np.lib.stride_tricks.sliding_window_view(
        pcm, spec.window_samples, axis=-1)[:, ::spec.hop_samples][:, :spec.num_frames]


# 10*log10(x) as ln(x) times this: numpy's natural log is several times faster.
_DB_PER_NEPER = np.float32(10.0 / np.log(10.0))


@functools.lru_cache(maxsize=8)
def _tables(spec: FeatureSpec):
    """Scaled window, mel weights and dB-scaled DCT as float32, cut to the
    FFT bins in use."""
    left = (spec.fft_size - spec.window_samples) // 2
    # int16 full scale folds into the window: one multiply per sample.
    win = (window(spec)[left:left + spec.window_samples] / 32768.0).astype(np.float32)
    weights = mel_weights(spec)
    # Bins above the highest mel filter (mel_fmax) carry no weight: skip them.
    used = int(np.nonzero(weights.any(axis=0))[0][-1]) + 1
    mel = np.ascontiguousarray(weights[:, :used].T.astype(np.float32))
    dct = np.ascontiguousarray((dct_matrix(spec).T * float(_DB_PER_NEPER)).astype(np.float32))
    return win, used, mel, dct


class Workspace:
    """Scratch arrays for `unnormalised`, reused call after call by one
    thread. Fresh multi-megabyte arrays for every batch cost page faults
    that took about as long as the FFT itself."""

    def __init__(self, spec: FeatureSpec, batch: int):
        _, used, _, _ = _tables(spec)
        # Frames zero-padded to the FFT size: only the first window_samples
        # columns are ever written, so the padding stays zero.
        self.frames = np.zeros((batch, spec.num_frames, spec.fft_size), np.float32)
        self.power = np.empty((batch, spec.num_frames, used), np.float32)


def unnormalised(pcm: np.ndarray, spec: FeatureSpec, work: Workspace | None = None) -> np.ndarray:
    """int16 PCM of shape (batch, clip_samples) -> (batch, frames, coefficients).

    Vectorised over the whole batch: one FFT call, two small matrix products.
    `work` (at least `batch` clips large) saves allocating the big arrays.
    """
    pcm = np.asarray(pcm)
    if pcm.ndim == 1:
        pcm = pcm[None, :]
    if pcm.shape[1] != spec.clip_samples:
        raise ValueError(f"expected clips of {spec.clip_samples} samples, got {pcm.shape[1]}")
    if work is None or len(work.frames) < len(pcm):
        work = Workspace(spec, len(pcm))
    win = _tables(spec)[0]
    x = work.frames[:len(pcm)]
    # The window sits centred in the FFT frame; a shift only changes phase,
    # so the power spectrum equals that of the zero-padded, centred frame.
    np.multiply(frames(pcm, spec), win, out=x[..., :spec.window_samples])
    return _coefficients(x, work.power[:len(pcm)], spec)


def _coefficients(x: np.ndarray, power_out: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Windowed frames zero-padded to the FFT size -> unnormalised features."""
    _, used, mel_t, dct_t = _tables(spec)
    spectrum = scipy.fft.rfft(x, axis=-1)[..., :used]
    power = np.abs(spectrum, out=power_out)
    power *= power
    log_mel = np.log(np.maximum(power @ mel_t, np.float32(spec.log_floor)))
    if spec.kind == "log_mel":
        log_mel *= _DB_PER_NEPER
        return log_mel
    return (log_mel @ dct_t).astype(np.float32, copy=False)


def frame_count(num_samples: int, spec: FeatureSpec) -> int:
    """Complete frames in num_samples of audio."""
    if num_samples < spec.window_samples:
        return 0
    return 1 + (num_samples - spec.window_samples) // spec.hop_samples


# Frames computed at a time over a long stream: bounds the scratch memory.
_STREAM_CHUNK_FRAMES = 1024


def unnormalised_frames(pcm: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """int16 PCM of any length -> (frames, coefficients), frame j covering
    samples [j * hop, j * hop + window): the frames a device computes as the
    audio arrives, and those of a clip where the stream is one clip long."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise ValueError(f"expected mono PCM (one axis), got shape {pcm.shape}")
    total = frame_count(len(pcm), spec)
    out = np.empty((total, spec.num_coefficients), np.float32)
    win, used, _, _ = _tables(spec)
    hop, size = spec.hop_samples, spec.window_samples
    x = np.zeros((min(total, _STREAM_CHUNK_FRAMES), spec.fft_size), np.float32)
    power = np.empty((len(x), used), np.float32)
    for start in range(0, total, _STREAM_CHUNK_FRAMES):
        n = min(_STREAM_CHUNK_FRAMES, total - start)
        chunk = pcm[start * hop:(start + n - 1) * hop + size]
        framed = np.lib.stride_tricks.sliding_window_view(chunk, size)[::hop]
        np.multiply(framed, win, out=x[:n, :size])
        out[start:start + n] = _coefficients(x[:n], power[:n], spec)
    return out


def normalise(features: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    if not spec.mean:
        raise ValueError("feature spec has no normalisation statistics")
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return ((features - mean) / std).astype(np.float32)


def compute(pcm: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """int16 PCM (batch, clip_samples) or (clip_samples,) -> normalised features."""
    return normalise(unnormalised(pcm, spec), spec)


def spec_from_params(features, sample_rate: int, clip_seconds: float,
                     labels: list[str]) -> FeatureSpec:
    """Build the spec (without statistics) from the `features` params group."""
    return FeatureSpec(
        kind=features.kind,
        sample_rate=sample_rate,
        clip_samples=round(sample_rate * clip_seconds),
        window_samples=round(sample_rate * features.window_ms / 1000),
        hop_samples=round(sample_rate * features.hop_ms / 1000),
        fft_size=features.fft_size,
        mel_bins=features.mel_bins,
        mel_fmin=features.mel_fmin,
        mel_fmax=features.mel_fmax,
        num_mfcc=features.num_mfcc,
        log_floor=features.log_floor,
        labels=tuple(labels),
    )


def load_paths(features_dir: Path, split: str) -> np.ndarray:
    """The clip paths of one split of data/features, relative to data/raw, in its order."""
    with np.load(Path(features_dir) / f"{split}.npz", allow_pickle=False) as data:
        return data["path"]


def load_split(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of data/features: the features with a channel axis, and the class ids."""
    path = Path(features_dir) / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["x"][..., None], data["y"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; run `dvc repro features`") from None
