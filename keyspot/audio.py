"""Decoding, mono mixdown, resampling and pad/trim of audio clips.

Kept free of TensorFlow and librosa: this module also runs inside the
SageMaker serving container and in `keyspot predict`.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import struct
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from keyspot.errors import UserError, without_object_reprs


class AudioError(UserError, ValueError):
    """A file or request body is not decodable audio."""


# The rules every reader of audio applies (fetch's sources, predict, serve):
# a regular file, a complete header, a rate some microphone has, finite samples.
# Resampling cost grows with the rate ratio's terms; rates outside this range
# are no microphone's, so they are refused rather than resampled.
SAMPLE_RATES = (1000, 384_000)
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)   # streamed WAVs leave the data size open


def display_name(path: str | Path) -> str:
    """A path as it can always be printed: undecodable bytes of the name as \\xNN."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_file(path: str | Path) -> bytes:
    """The bytes of a regular file; a missing, special (FIFO, device), empty or
    unreadable one is an AudioError naming it. A FIFO is never opened, so it
    cannot hang the reader."""
    name = display_name(path)
    try:
        info = os.stat(path)
    except OSError as err:
        raise AudioError(f"{name}: {'no such file' if isinstance(err, FileNotFoundError) else err.strerror}") \
            from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{name}: a folder, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(f"{name}: not a regular file (a FIFO, socket or device)")
    if info.st_size == 0:
        raise AudioError(f"{name}: empty file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise AudioError(f"{name}: cannot be read ({err.strerror})") from None


def check_wav(f: BinaryIO, size: int, name: str) -> None:
    """A RIFF/WAVE file whose data chunk is shorter than it declares (a
    truncated download or copy) is an AudioError: decoders read what is there
    without a word. A header broken otherwise is left to the decoder, which
    refuses it; other formats pass. Reads the chunk headers only."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return
    pos, seen_fmt = 12, False
    while pos + 8 <= size:
        f.seek(pos)
        header = f.read(8)
        chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
        body = pos + 8
        if chunk == b"fmt ":
            seen_fmt = body + length <= size
        elif chunk == b"data":
            if seen_fmt and length not in _UNKNOWN_SIZES and body + length > size:
                raise AudioError(f"{name}: not readable audio (truncated: the data chunk declares "
                                 f"{length} bytes, {size - body} are there)")
            return
        pos = body + length + (length & 1)


def check_rate(rate: int, name: str) -> None:
    low, high = SAMPLE_RATES
    if not low <= rate <= high:
        raise AudioError(f"{name}: sample rate {rate} Hz is outside {low}..{high} Hz")


def check_finite(samples: np.ndarray, name: str) -> None:
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: holds NaN or infinite samples")


def _read(source: str | Path | bytes) -> tuple[bytes, str]:
    """The bytes of a path or a request body, and the name to give in errors."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError("empty audio body")
        return bytes(source), "audio body"
    return read_file(source), display_name(source)


def decode(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG from a path or bytes into float32 (frames, channels),
    by the rules above."""
    return _decode(*_read(source))


def _decode(data: bytes, name: str, dtype: str = "float32") -> tuple[np.ndarray, int]:
    stream = io.BytesIO(data)
    check_wav(stream, len(data), name)
    stream.seek(0)
    try:
        samples, rate = soundfile.read(stream, dtype=dtype, always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        why = without_object_reprs(getattr(err, "error_string", None) or str(err), name)
        raise AudioError(f"{name}: not readable audio ({why})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: holds no samples")
    check_rate(int(rate), name)
    check_finite(samples, name)
    return samples, int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (exact ratio), float32 in and out."""
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    # Imported here: scipy.signal takes a second to import, most of what
    # `keyspot predict --int8` would otherwise wait for at 16 kHz.
    from scipy.signal import resample_poly

    g = gcd(rate, target_rate)
    up, down = target_rate // g, rate // g
    return resample_poly(samples, up, down, window=_lowpass(up, down, samples.dtype)).astype(np.float32)


# Bounded: a server resamples whatever rates its clients send.
@functools.lru_cache(maxsize=32)
def _lowpass(up: int, down: int, dtype: np.dtype) -> np.ndarray:
    """The FIR low-pass resample_poly designs for this ratio when given its
    default window (Kaiser, beta 5, ten zero crossings a side, in the
    samples' float type), kept for the next clip at the same rates:
    designing it again for every short take cost as much as the resampling
    itself. Read-only; resample_poly works on a copy."""
    from scipy.signal import firwin

    half_len = 10 * max(up, down)
    h = firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
    h = h.astype(dtype if np.issubdtype(dtype, np.floating) else np.float64)
    h.setflags(write=False)
    return h


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or keep the centre `length` samples."""
    if samples.shape[0] >= length:
        start = (samples.shape[0] - length) // 2
        return samples[start:start + length]
    return np.pad(samples, (0, length - samples.shape[0]))


# Samples converted at a time: a stream of an hour and more in one piece
# made float temporaries of hundreds of MB, whose fresh pages cost seconds.
TO_INT16_CHUNK = 1 << 16


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 PCM, saturating: what a microphone delivers."""
    samples = np.asarray(samples)
    out = np.empty(samples.shape, np.int16)
    flat, flat_out = samples.reshape(-1), out.reshape(-1)
    for start in range(0, flat.size, TO_INT16_CHUNK):
        part = flat[start:start + TO_INT16_CHUNK]
        flat_out[start:start + TO_INT16_CHUNK] = np.clip(np.round(part * 32768.0), -32768, 32767)
    return out


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
            if body + 16 > len(data):
                return None   # a cut fmt chunk: the decoder says what is wrong
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
    data, name = _read(source)
    fast = pcm16_mono(data)
    if fast is not None and fast[1] == sample_rate:
        check_wav(io.BytesIO(data), len(data), name)
        return fit_length(fast[0], clip_samples).astype(np.int16)
    samples, rate = _decode(data, name)
    mono = resample(to_mono(samples), rate, sample_rate)
    return to_int16(fit_length(mono, clip_samples))


def load_pcm(source: str | Path | bytes, sample_rate: int) -> np.ndarray:
    """Any readable audio, whole, to int16 mono at `sample_rate`: a stream
    of any length rather than a clip."""
    data, name = _read(source)
    fast = pcm16_mono(data)
    if fast is not None and fast[1] == sample_rate:
        check_wav(io.BytesIO(data), len(data), name)
        return fast[0].astype(np.int16)
    if _is_pcm16_mono(data, sample_rate):
        # A stream as data/streams holds it (16-bit FLAC): its samples as
        # they are stored, without the float round trip, which took longer
        # than decoding an hour of audio and gives the same samples.
        return _decode(data, name, "int16")[0][:, 0]
    samples, rate = _decode(data, name)
    return to_int16(resample(to_mono(samples), rate, sample_rate))


def _is_pcm16_mono(data: bytes, sample_rate: int) -> bool:
    """Whether libsndfile reads `data` as 16-bit mono PCM at `sample_rate`
    (False where it cannot read it: the decoder then says why)."""
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError):
        return False
    return info.subtype == "PCM_16" and info.channels == 1 and info.samplerate == sample_rate


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    soundfile.write(str(path), pcm, sample_rate, subtype="PCM_16", format="WAV")
