"""SVOX Pico, the speech engine of Android's early years: ttspico, built from
its pinned source distribution, with the voices it ships (en-US, en-GB and
the other languages), never the distribution's libttspico.

A voice name is a Pico language, e.g. `en-US`. Pico runs in a process of its
own, pico_zygote.py, with no other native library beside it (in a process
that had loaded many, ttspico crashed), which forks a child for each
utterance: Pico keeps state between utterances (its noise generator), and a
child of an engine that never spoke gives the same samples whatever was
said before.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np

from keyspot.data.tts.base import MissingToolError, TTSError, ZygoteProcess, package_version

PACKAGE = "ttspico"
RATE = 16000
LANGUAGES = ("en-US", "en-GB", "de-DE", "es-ES", "fr-FR", "it-IT")
# Pico's own limits: rate and pitch in percent of the voice's own.
RATE_PERCENT = (20, 500)
PITCH_PERCENT = (50, 200)
ZYGOTE = Path(__file__).with_name("pico_zygote.py")


def language_dir() -> Path:
    """Where pip puts ttspico's voices (its data_files)."""
    return Path(sys.prefix) / "languages"


def program() -> str:
    return f"SVOX Pico ({PACKAGE} {package_version('SVOX Pico', PACKAGE)})"


class _Zygote(ZygoteProcess):
    """This process's pico_zygote.py, started on first use."""

    def __init__(self):
        package_version("SVOX Pico", PACKAGE)
        # A trailing slash: Pico joins the folder and the file names itself.
        super().__init__(str(ZYGOTE), [f"{language_dir()}/"], "SVOX Pico")
        self._read()


def _zygote() -> _Zygote:
    # One per process: a forked worker must not share its parent's pipes.
    return _zygote_for(os.getpid())


@functools.cache
def _zygote_for(pid: int) -> _Zygote:
    return _Zygote()


def check_installed() -> None:
    try:
        _zygote()
    except EOFError:
        raise MissingToolError(f"SVOX Pico: {PACKAGE} does not load; reinstall it with `make setup`") from None


def check_voice(name: str) -> None:
    if name not in LANGUAGES:
        raise ValueError(f"SVOX Pico has no voice {name!r}; it has {', '.join(LANGUAGES)}")
    status, message = _zygote().ask({"voice": name})
    if status != 0:
        raise MissingToolError(f"SVOX Pico: {message.decode(errors='replace')}; reinstall {PACKAGE} with `make setup`")


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """`pitch` on espeak-ng's 0-99 scale (50 neutral), mapped to Pico's percent:
    one octave over the whole scale, as for flite; `speed` relative."""
    rate = int(np.clip(round(100 * speed), *RATE_PERCENT))
    percent = int(np.clip(round(100 * 2.0 ** ((pitch - 50.0) / 80.0)), *PITCH_PERCENT))
    status, payload = _zygote().ask({"voice": name, "text": text, "rate": rate, "pitch": percent})
    if status != 0:
        raise TTSError(payload.decode(errors="replace"))
    return np.frombuffer(payload, "<i2").astype(np.float32) / 32768.0, RATE
