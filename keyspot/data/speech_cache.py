"""A cache of spoken takes, so that changing the noise, the rooms or the
microphones of the synthetic dataset does not synthesise the speech again.

A take is the engine's output for (engine and package version, voice, text,
speed, pitch), trimmed of its silence, as int16 at the engine's rate: exactly
what rendering continues from, so a clip's bytes are the same whether its
take came from the cache or from the engine. The cache lives in
$KEYSPOT_CACHE/speech (default ~/.cache/keyspot/speech, or under
$XDG_CACHE_HOME); deleting it costs only time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from keyspot.data import tts

TRIM_DB = -40.0                    # below the take's peak counts as silence
TRIM_MARGIN_S = 0.01               # kept either side of the trimmed word
FORMAT = 1                         # bump when what a take holds changes


def cache_dir() -> Path:
    root = os.environ.get("KEYSPOT_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keyspot"
    return Path(root) / "speech"


def take(voice: tts.Voice, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """int16 samples of the spoken, trimmed text and their rate; from the
    cache when this take was spoken before. Raises tts.TTSError."""
    key = hashlib.sha256("\x1f".join(
        (str(FORMAT), tts.take_key(voice.engine), str(voice), text, repr(float(speed)),
         repr(float(pitch)), repr(TRIM_DB), repr(TRIM_MARGIN_S))).encode()).hexdigest()
    path = cache_dir() / key[:2] / f"{key}.npz"
    try:
        with np.load(path) as saved:
            return saved["pcm"], int(saved["rate"])
    except (OSError, ValueError, KeyError, EOFError):
        pass   # not cached yet, or a damaged entry: speak it again
    samples, rate = tts.synthesize(voice, text, speed, pitch)
    pcm = trim(np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16), rate)
    _store(path, pcm, rate)
    return pcm, rate


def trim(pcm: np.ndarray, rate: int) -> np.ndarray:
    magnitude = np.abs(pcm.astype(np.int32))
    loud = np.flatnonzero(magnitude > magnitude.max() * 10.0 ** (TRIM_DB / 20.0))
    margin = round(TRIM_MARGIN_S * rate)
    return pcm[max(loud[0] - margin, 0):loud[-1] + margin + 1]


def _store(path: Path, pcm: np.ndarray, rate: int) -> None:
    """Write atomically: a worker reading the entry sees all of it or none."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            np.savez(f, pcm=pcm, rate=np.int64(rate))
        os.replace(f.name, path)
    except OSError:
        pass   # a read-only or full cache only costs time
