"""SVOX Pico, the speech engine of Android's early years: ttspico, built from
its pinned source distribution, with the voices it ships (en-US, en-GB and
the other languages), never the distribution's libttspico.

A voice name is a Pico language, e.g. `en-US`. Pico keeps state between
utterances (its noise generator), so each utterance runs in a child forked
from a process whose engine never spoke (base.in_fresh_process): the same
samples whatever was said before. (A new engine per utterance gives the
same samples, but creating and freeing engines in a process that has
loaded many other libraries crashed ttspico.)
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from pathlib import Path

import numpy as np

from keyspot.data.tts.base import MissingToolError, TTSError, in_fresh_process

PACKAGE = "ttspico"
RATE = 16000
LANGUAGES = ("en-US", "en-GB", "de-DE", "es-ES", "fr-FR", "it-IT")
# Pico's own limits: rate and pitch in percent of the voice's own.
RATE_PERCENT = (20, 500)
PITCH_PERCENT = (50, 200)


def language_dir() -> Path:
    """Where pip puts ttspico's voices (its data_files)."""
    return Path(sys.prefix) / "languages"


def program() -> str:
    return f"SVOX Pico ({PACKAGE} {importlib.metadata.version(PACKAGE)})"


def check_installed() -> None:
    _ctts()


def check_voice(name: str) -> None:
    if name not in LANGUAGES:
        raise ValueError(f"SVOX Pico has no voice {name!r}; it has {', '.join(LANGUAGES)}")
    _engine(name)   # loads its voice files, or says they are missing


@functools.cache
def _ctts():
    try:
        import ctts
    except ImportError:
        raise MissingToolError(f"SVOX Pico: the Python package {PACKAGE} is not installed; "
                               "run `make setup` (it installs requirements.lock)") from None
    return ctts


@functools.cache
def _engine(name: str):
    """This process's engine for the voice, loaded once and never freed; it
    speaks only in forked children."""
    try:
        # A trailing slash: Pico joins the folder and the file names itself.
        return _ctts().engine_create(language_dir=f"{language_dir()}/", language=name)
    except RuntimeError as err:
        raise MissingToolError(f"SVOX Pico: cannot load the voice {name!r} from {language_dir()} "
                               f"({err}); reinstall {PACKAGE} with `make setup`") from None


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """`pitch` on espeak-ng's 0-99 scale (50 neutral), mapped to Pico's percent:
    one octave over the whole scale, as for flite; `speed` relative."""
    rate = int(np.clip(round(100 * speed), *RATE_PERCENT))
    percent = int(np.clip(round(100 * 2.0 ** ((pitch - 50.0) / 80.0)), *PITCH_PERCENT))
    pcm = in_fresh_process(_speak, _engine(name), text, rate, percent)
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0, RATE


def _speak(engine, text: str, rate: int, percent: int) -> bytes:
    ctts = _ctts()
    ctts.engine_set_property(engine, "rate", rate)
    ctts.engine_set_property(engine, "pitch", percent)
    chunks: list[bytes] = []
    ctts.engine_speak(engine, text, lambda _format, data, _final: chunks.append(data) or True)
    if not chunks:
        raise TTSError("SVOX Pico returned no audio")
    return b"".join(chunks)
