"""Decoding, mono mixdown, resampling and pad/trim of audio clips.

Kept free of TensorFlow and librosa: this module also runs inside the
SageMaker serving container and in `keyspot predict`.
"""

from __future__ import annotations

import io
import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly


class AudioError(ValueError):
    """A file or request body is not decodable audio."""


def decode(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG from a path or bytes into float32 (frames, channels)."""
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError("empty audio body")
        source = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise AudioError(f"{name}: empty file")
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{name}: not readable audio ({err})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: holds no samples")
    return samples, int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (exact ratio), float32 in and out."""
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    g = gcd(rate, target_rate)
    return resample_poly(samples, target_rate // g, rate // g).astype(np.float32)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or keep the centre `length` samples."""
    if samples.shape[0] >= length:
        start = (samples.shape[0] - length) // 2
        return samples[start:start + length]
    return np.pad(samples, (0, length - samples.shape[0]))


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 PCM, saturating: what a microphone delivers."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_mono(data: bytes) -> tuple[np.ndarray, int] | None:
    """The samples and rate of a plain 16-bit mono PCM WAV, else None.

    Most clips of a dataset are exactly this; reading them without
    libsndfile is about ten times faster and gives the same samples.
    Anything unusual (other formats, extensible headers, odd chunks) returns
    None and goes through `decode`.
    """
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt " and size >= 16:
            fmt = struct.unpack_from("<HHIIHH", data, body)
        elif chunk == b"data":
            if fmt is None or fmt[0] != 1 or fmt[1] != 1 or fmt[5] != 16:
                return None
            end = min(body + size, len(data))
            n = (end - body) // 2
            if n == 0:
                return None
            return np.frombuffer(data, dtype="<i2", count=n, offset=body), int(fmt[2])
        pos = body + size + (size & 1)
    return None


def load_clip(source: str | Path | bytes, sample_rate: int, clip_samples: int) -> np.ndarray:
    """Any readable audio to int16 mono at `sample_rate`, `clip_samples` long."""
    if not isinstance(source, (bytes, bytearray)):
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError:
            data = b""  # decode() reports the missing or unreadable file
        fast = pcm16_mono(data)
        if fast is not None and fast[1] == sample_rate:
            return fit_length(fast[0], clip_samples).astype(np.int16)
    samples, rate = decode(source)
    mono = resample(to_mono(samples), rate, sample_rate)
    return to_int16(fit_length(mono, clip_samples))


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    soundfile.write(str(path), pcm, sample_rate, subtype="PCM_16", format="WAV")
