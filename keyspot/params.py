"""Typed, validated view of params.yaml.

Every stage reads its parameters through `load()`. A missing key, an unknown
key or a value of the wrong type stops the stage with a message that names
the key, so a typo in conf/ or in `dvc exp run -S` never trains on defaults.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from keyspot.errors import UserError

PARAMS_FILE = Path("params.yaml")
RECOGNIZER_MAX_RESULTS = 64   # KEYSPOT_RECOGNIZER_MAX_RESULTS in firmware/core/recognizer.h


class ParamsError(UserError, ValueError):
    """A params.yaml key is missing, unknown or of the wrong type."""


def read_yaml(path: Path):
    """Parse YAML as DVC does: YAML 1.2, where `yes`/`no`/`on`/`off` are
    strings (PyYAML's YAML 1.1 reads them as booleans) and `1e-10` a number."""
    return YAML(typ="safe", pure=True).load(Path(path).read_text())


@dataclasses.dataclass(frozen=True)
class Augment:
    prob: float                       # share of training clips augmented each epoch
    speed_range: tuple[float, float]  # resampling factor: tempo, pitch and formants together
    shift_ms: float
    gain_db_range: tuple[float, float]
    noise_prob: float
    noise_snr_db_range: tuple[float, float]
    time_masks: int
    time_mask_frames: int
    freq_masks: int
    freq_mask_bins: int


@dataclasses.dataclass(frozen=True)
class SyntheticNoise:
    """Background under the spoken clips and in _silence_ (keyspot/data/synthetic.py)."""
    kinds: tuple[str, ...]
    snr_db_range: tuple[float, float]
    silence_dbfs_range: tuple[float, float]
    babble_talkers: tuple[int, int]
    babble_sentences: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
    """Keywords spoken by espeak-ng and flite voices (keyspot/data/synthetic.py)."""
    name: str
    keywords: tuple[str, ...]
    unknown_words: tuple[str, ...]
    sample_rate: int
    clip_seconds: float
    espeak_accents: tuple[str, ...]
    espeak_variants: tuple[str, ...]
    flite_voices: tuple[str, ...]
    takes_per_keyword: int
    unknown_per_voice: int
    silence_per_voice: int
    speed_range: tuple[float, float]
    pitch_range: tuple[float, float]
    gain_db_range: tuple[float, float]
    lead_silence_s_range: tuple[float, float]
    noise: SyntheticNoise
    split_fractions: dict[str, float]
    workers: int


@dataclasses.dataclass(frozen=True)
class SpeechCommandsDataset:
    """Google Speech Commands v0.01/v0.02, downloaded and cached (keyspot/data/speech_commands.py)."""
    name: str
    version: str
    keywords: tuple[str, ...]
    silence_percentage: float
    unknown_percentage: float
    test_archive: bool
    sample_rate: int
    clip_seconds: float
    base_url: str
    cache_dir: str
    sha256: dict[str, str]
    workers: int


@dataclasses.dataclass(frozen=True)
class _AudioFiles:
    """Keys of the folder and s3 sources: which files are which class, and how
    each becomes clips (keyspot/data/folder.py)."""
    name: str
    keywords: tuple[str, ...]
    other_folders: str
    split_csv: str
    speaker_regex: str
    split_fractions: dict[str, float]
    sample_rate: int
    clip_seconds: float
    min_seconds: float
    pad: str
    long_clips: str
    max_windows: int
    workers: int


@dataclasses.dataclass(frozen=True)
class FolderDataset(_AudioFiles):
    """Audio files in a local folder, one subfolder per class."""
    root: str


@dataclasses.dataclass(frozen=True)
class S3Dataset(_AudioFiles):
    """The folder layout under s3://bucket/prefix, cached locally (keyspot/data/s3.py)."""
    url: str
    cache_dir: str


# dataset.name -> the dataclass of that source's keys. Each source of
# keyspot/data/ adds its own; `dataset.name` picks which one validates the
# group, so a key of another source is reported as unknown.
DATASETS: dict[str, type] = {
    "synthetic": SyntheticDataset,
    "speech_commands": SpeechCommandsDataset,
    "folder": FolderDataset,
    "s3": S3Dataset,
}
Dataset = SyntheticDataset  # typing alias: any value of DATASETS


@dataclasses.dataclass(frozen=True)
class Features:
    kind: str
    window_ms: float
    hop_ms: float
    fft_size: int
    mel_bins: int
    mel_fmin: float
    mel_fmax: float
    num_mfcc: int
    log_floor: float
    backend: str                      # local | sagemaker (a processing job); never changes the features


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    filters: int
    blocks: int
    first_kernel: tuple[int, int]
    first_stride: tuple[int, int]
    dropout: float


@dataclasses.dataclass(frozen=True)
class Train:
    epochs: int
    patience: int                     # epochs without a better val accuracy; 0 = never stop early
    batch_size: int
    lr: float
    lr_min: float
    label_smoothing: float
    class_weight_power: float         # inverse-frequency class weights to this power; 0 = unweighted
    augment: Augment
    backend: str                      # local | sagemaker (a training job); never changes the model


@dataclasses.dataclass(frozen=True)
class Quantize:
    calibration_samples: int
    arena_headroom: float


@dataclasses.dataclass(frozen=True)
class Recognizer:
    """The device's decision over a stream of scores (firmware/core/recognizer.h),
    written into the generated folder by c-export."""
    average_window_ms: int       # scores of this long are averaged per label
    detection_threshold: int     # of 255; the averaged top score must exceed it
    suppression_ms: int          # no second detection this soon after one
    minimum_count: int           # results needed inside the window


@dataclasses.dataclass(frozen=True)
class Export:
    out_dir: str
    engine: str
    recognizer: Recognizer


@dataclasses.dataclass(frozen=True)
class Deploy:
    """The SageMaker endpoint (keyspot/deploy/sagemaker.py); checked there when enabled."""
    enabled: bool
    region: str
    framework_version: str
    bucket: str
    prefix: str
    endpoint_name: str
    role_arn: str                    # empty: the KEYSPOT_SAGEMAKER_ROLE environment variable
    serverless: bool                 # true: serverless_*; false: instance_type x instance_count
    instance_type: str
    instance_count: int
    serverless_memory_mb: int
    serverless_max_concurrency: int
    wait_minutes: int


@dataclasses.dataclass(frozen=True)
class Spot:
    enabled: bool                    # managed spot training (training jobs only)
    max_wait_s: int                  # spot capacity wait plus run time; at least max_runtime_s


@dataclasses.dataclass(frozen=True)
class SageMakerJobs:
    """SageMaker jobs for features.backend / train.backend = sagemaker
    (keyspot/sagemaker_jobs/); checked there when a backend uses them."""
    region: str
    role_arn: str                    # empty: the KEYSPOT_SAGEMAKER_ROLE environment variable
    bucket: str
    prefix: str
    image: str                       # empty: the AWS TensorFlow training image of framework_version
    framework_version: str
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_s: int
    spot: Spot
    tags: dict[str, str]
    stream_logs: bool
    poll_s: int


@dataclasses.dataclass(frozen=True)
class Tracking:
    uri: str
    experiment: str
    registered_model: str
    alias: str


class _AnyDataset:
    """Marks Params.dataset: validated by the dataclass DATASETS names."""


@dataclasses.dataclass(frozen=True)
class Params:
    seed: int
    tracking: Tracking
    dataset: _AnyDataset
    features: Features
    model: Model
    train: Train
    quantize: Quantize
    export: Export
    deploy: Deploy
    sagemaker: SageMakerJobs


# Values checked beyond their type: key -> (predicate, what is allowed).
_CHOICES = {
    "features.kind": {"mfcc", "log_mel"},
    "export.engine": {"tflm", "c"},
    "features.backend": {"local", "sagemaker"},
    "train.backend": {"local", "sagemaker"},
}


@dataclasses.dataclass(frozen=True)
class _Range:
    """Allowed values of a number: low/high bounds, each closed unless open."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, v: float) -> bool:
        return ((self.low is None or (v > self.low if self.low_open else v >= self.low))
                and (self.high is None or (v < self.high if self.high_open else v <= self.high)))

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


def _at_least(low):
    return _Range(low=low)


_POSITIVE = _Range(low=0, low_open=True)
# Each number's range; a list or pair key applies to every element. Checked on
# every load (`keyspot compose`, and each stage before it does any work). Keys
# with a message of their own are checked in _check; deploy.* and sagemaker.*
# where they are used (keyspot/deploy, keyspot/sagemaker_jobs), so that they
# never stop a local run.
_RANGES = {
    "seed": _at_least(0),
    "dataset.sample_rate": _Range(8000, 384000),
    "dataset.clip_seconds": _Range(0, 60, low_open=True),
    "dataset.takes_per_keyword": _at_least(1),
    "dataset.unknown_per_voice": _at_least(0),
    "dataset.silence_per_voice": _at_least(0),
    "dataset.silence_percentage": _Range(0, 100),
    "dataset.unknown_percentage": _Range(0, 100),
    "dataset.min_seconds": _at_least(0),
    "dataset.max_windows": _at_least(0),
    "dataset.workers": _at_least(0),
    "dataset.speed_range": _POSITIVE,
    "dataset.lead_silence_s_range": _at_least(0),
    "features.window_ms": _POSITIVE,
    "features.hop_ms": _POSITIVE,
    "features.fft_size": _Range(16, 65536),
    "features.mel_bins": _at_least(1),
    "features.mel_fmin": _at_least(0),
    "features.mel_fmax": _POSITIVE,
    "features.num_mfcc": _at_least(1),
    "features.log_floor": _POSITIVE,
    "model.filters": _at_least(1),
    "model.blocks": _at_least(0),
    "model.first_kernel": _at_least(1),
    "model.first_stride": _at_least(1),
    "model.dropout": _Range(0, 1, high_open=True),
    "train.patience": _at_least(0),
    "train.batch_size": _at_least(1),
    "train.lr": _POSITIVE,
    "train.lr_min": _at_least(0),
    "train.label_smoothing": _Range(0, 1, high_open=True),
    "train.augment.shift_ms": _at_least(0),
    "train.augment.time_masks": _at_least(0),
    "train.augment.time_mask_frames": _at_least(0),
    "train.augment.freq_masks": _at_least(0),
    "train.augment.freq_mask_bins": _at_least(0),
    "quantize.calibration_samples": _at_least(1),
    "quantize.arena_headroom": _at_least(1),
}
# Pairs that are [low, high]: the first must not exceed the second.
_ORDERED_PAIRS = ("dataset.speed_range", "dataset.pitch_range", "dataset.gain_db_range",
                  "dataset.lead_silence_s_range", "dataset.noise.snr_db_range",
                  "dataset.noise.silence_dbfs_range", "dataset.noise.babble_talkers",
                  "train.augment.gain_db_range", "train.augment.noise_snr_db_range")


def _check_ranges(params: Params) -> None:
    """Every number inside its range (_RANGES), every [low, high] pair in order."""
    values = flatten(params)
    for key, allowed in _RANGES.items():
        if key not in values:
            continue   # a key of another dataset source
        value = values[key]
        for v in value if isinstance(value, list) else [value]:
            if not allowed.admits(v):
                raise ParamsError(f"{key}: {value!r} is not allowed; it must be {allowed}")
    for key in _ORDERED_PAIRS:
        if key in values and values[key][0] > values[key][1]:
            raise ParamsError(f"{key}: {values[key]!r} is not [low, high]; the first must not exceed the second")


def _convert(value, hint, key: str):
    """Return `value` as type `hint`, or raise ParamsError naming `key`."""
    origin = typing.get_origin(hint)
    if hint is _AnyDataset:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        source = value.get("name")
        if source not in DATASETS:
            raise ParamsError(f"{key}.name: {source!r} is not one of {sorted(DATASETS)}")
        return _build(DATASETS[source], value, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(f"{key}: expected {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        _, value_type = typing.get_args(hint)
        return {k: _convert(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ParamsError(f"{key}: {value!r} is not a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            # YAML reads `yes`, `no`, `on` and `off` as booleans.
            raise ParamsError(f"{key}: expected a string, got {value!r} (quote it in YAML)")
        return value
    raise TypeError(f"unsupported type {hint} for {key}")


def _build(cls, data, prefix: str):
    if not isinstance(data, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = ", ".join(f"{prefix}.{k}" if prefix else str(k) for k in unknown)
        raise ParamsError(f"unknown key(s) {where}; allowed: {', '.join(names)}")
    values = {}
    for name in names:
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            raise ParamsError(f"{key}: missing")
        values[name] = _convert(data[name], hints[name], key)
        if key in _CHOICES and values[name] not in _CHOICES[key]:
            raise ParamsError(f"{key}: {values[name]!r} is not one of {sorted(_CHOICES[key])}")
    return cls(**values)


def _check_synthetic(ds: SyntheticDataset) -> None:
    if set(ds.split_fractions) != {"val", "test"}:
        raise ParamsError("dataset.split_fractions: give exactly the keys val and test")
    if sum(ds.split_fractions.values()) >= 1.0:
        raise ParamsError("dataset.split_fractions: val + test must leave voices for train")
    if len(set(ds.espeak_variants)) + len(set(ds.flite_voices)) < 3:
        raise ParamsError("dataset.espeak_variants, dataset.flite_voices: at least three voices "
                          "in all (train, val, test)")


def _check_speech_commands(ds: SpeechCommandsDataset) -> None:
    if ds.version not in ("v0.01", "v0.02"):
        raise ParamsError(f"dataset.version: {ds.version!r} is not one of ['v0.01', 'v0.02']")
    for key in ("silence_percentage", "unknown_percentage", "workers"):
        if getattr(ds, key) < 0:
            raise ParamsError(f"dataset.{key}: must not be negative")
    for file, digest in ds.sha256.items():
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise ParamsError(f"dataset.sha256.{file}: {digest!r} is not a SHA-256 (64 hex digits)")


def _check_audio_files(ds: _AudioFiles) -> None:
    if set(ds.split_fractions) != {"val", "test"}:
        raise ParamsError("dataset.split_fractions: give exactly the keys val and test")
    if min(ds.split_fractions.values()) < 0 or sum(ds.split_fractions.values()) >= 1.0:
        raise ParamsError("dataset.split_fractions: val and test from 0, together below 1")
    for key, allowed in (("other_folders", ("unknown", "skip")), ("pad", ("end", "centre")),
                         ("long_clips", ("centre", "windows"))):
        if getattr(ds, key) not in allowed:
            raise ParamsError(f"dataset.{key}: {getattr(ds, key)!r} is not one of {list(allowed)}")
    for key in ("min_seconds", "max_windows", "workers"):
        if getattr(ds, key) < 0:
            raise ParamsError(f"dataset.{key}: must not be negative")
    if ds.sample_rate < 8000 or ds.clip_seconds <= 0:
        raise ParamsError("dataset.sample_rate / clip_seconds: need >= 8000 Hz and > 0 s")
    try:
        re.compile(ds.speaker_regex)
    except re.error as err:
        raise ParamsError(f"dataset.speaker_regex: {ds.speaker_regex!r} is not a regular "
                          f"expression ({err})") from None
    if isinstance(ds, FolderDataset) and not ds.root:
        raise ParamsError("dataset.root: empty; set it to the folder that holds one subfolder "
                          "per class (-S dataset.root=/path/to/audio)")
    if isinstance(ds, S3Dataset) and not re.fullmatch(r"s3://[^/]+(/.*)?", ds.url):
        raise ParamsError(f"dataset.url: {ds.url!r} is not s3://bucket or s3://bucket/prefix")


# dataset.name -> checks across that source's keys, beyond their types.
_DATASET_CHECKS = {
    "synthetic": _check_synthetic,
    "speech_commands": _check_speech_commands,
    "folder": _check_audio_files,
    "s3": _check_audio_files,
}
# Sources that take every class folder they find when `keywords` is empty.
_CLASSES_FROM_DATA = {"folder", "s3"}


def _check(params: Params) -> None:
    ds = params.dataset
    if not ds.keywords and ds.name not in _CLASSES_FROM_DATA:
        raise ParamsError("dataset.keywords: at least one keyword is needed")
    if ds.name in _DATASET_CHECKS:
        _DATASET_CHECKS[ds.name](ds)
    # Before any check that combines keys, so that a bad value is named itself.
    _check_ranges(params)
    if params.features.mel_fmin >= params.features.mel_fmax:
        raise ParamsError(f"features.mel_fmin: {params.features.mel_fmin:g} Hz must be below features.mel_fmax "
                          f"({params.features.mel_fmax:g} Hz)")
    fft = params.features.fft_size
    if fft & (fft - 1):
        raise ParamsError(f"features.fft_size: {fft} is not a power of two (the firmware's FFT needs one); "
                          f"try {1 << fft.bit_length()}")
    if params.train.lr_min > params.train.lr:
        raise ParamsError(f"train.lr_min: {params.train.lr_min:g} is above train.lr ({params.train.lr:g})")
    if params.features.num_mfcc > params.features.mel_bins:
        raise ParamsError("features.num_mfcc: must not exceed features.mel_bins")
    if params.features.mel_fmax > ds.sample_rate / 2:
        raise ParamsError("features.mel_fmax: above the Nyquist frequency of dataset.sample_rate")
    window = round(ds.sample_rate * params.features.window_ms / 1000)
    if window > params.features.fft_size:
        raise ParamsError(
            f"features.fft_size: {params.features.fft_size} is shorter than the "
            f"{window}-sample window; raise it or shorten features.window_ms")
    if params.train.epochs < 1:
        raise ParamsError("train.epochs: must be at least 1")
    for key in ("prob", "noise_prob"):
        if not 0.0 <= getattr(params.train.augment, key) <= 1.0:
            raise ParamsError(f"train.augment.{key}: a probability, between 0 and 1")
    if not 0.0 <= params.train.class_weight_power <= 1.0:
        raise ParamsError("train.class_weight_power: between 0 (unweighted) and 1 (inverse frequency)")
    low, high = params.train.augment.speed_range
    if not 0.5 <= low <= high <= 2.0:
        raise ParamsError("train.augment.speed_range: [low, high] with 0.5 <= low <= high <= 2 ([1, 1] is off)")
    _check_recognizer(params.export.recognizer)


def _check_recognizer(r: Recognizer) -> None:
    if r.average_window_ms < 1:
        raise ParamsError("export.recognizer.average_window_ms: must be at least 1")
    if not 0 <= r.detection_threshold <= 255:
        raise ParamsError("export.recognizer.detection_threshold: between 0 and 255 (scores are of 255)")
    if r.suppression_ms < 0:
        raise ParamsError("export.recognizer.suppression_ms: must not be negative")
    # firmware/core/recognizer.h keeps at most KEYSPOT_RECOGNIZER_MAX_RESULTS (64) results.
    if not 1 <= r.minimum_count <= RECOGNIZER_MAX_RESULTS:
        raise ParamsError(f"export.recognizer.minimum_count: between 1 and {RECOGNIZER_MAX_RESULTS}")


def from_dict(data: dict) -> Params:
    params = _build(Params, data, "")
    _check(params)
    return params


def load(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; raise ParamsError naming the bad key."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run `make params` to compose it from conf/") from None
    except YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    try:
        return from_dict(data)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def flatten(params: Params) -> dict[str, object]:
    """`{"train.lr": 0.003, ...}` for experiment trackers."""
    out: dict[str, object] = {}

    def walk(obj, prefix):
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name), f"{prefix}{f.name}.")
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = list(obj) if isinstance(obj, tuple) else obj

    walk(params, "")
    return out

