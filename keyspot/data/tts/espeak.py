"""espeak-ng as a library: libespeak-ng and its data from the espeakng-loader
wheel, which requirements.lock pins, never the distribution's espeak-ng.

A voice name is `<language>+<variant>`, e.g. `en-us+f3`, as espeak-ng's
`-v` takes it. espeak-ng keeps state from one utterance to the next
(flutter and noise generators, filter memories), so the same text would
give other samples depending on what was said before, and a dataset's
bytes on which worker rendered which clip. Each process therefore talks to
its own espeak_zygote.py, which forks a fresh engine for every utterance.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from keyspot.data.tts.base import MissingToolError, TTSError, ZygoteProcess, package_version

PACKAGE = "espeakng-loader"
WPM = 175   # espeak-ng's default rate; `speed` scales it
ZYGOTE = Path(__file__).with_name("espeak_zygote.py")


class _Zygote(ZygoteProcess):
    """This process's espeak_zygote.py, started on first use."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise MissingToolError(f"espeak-ng: the Python package {PACKAGE} is not installed; "
                                   "run `make setup` (it installs requirements.lock)") from None
        self.variants_dir = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
        super().__init__(str(ZYGOTE), [espeakng_loader.get_library_path(),
                                        str(Path(espeakng_loader.get_data_path()).parent)], "espeak-ng")
        status, hello = self._read()
        info = json.loads(hello)
        if status != 0:
            raise MissingToolError(f"espeak-ng from {PACKAGE} could not load its data; "
                                   "reinstall it with `make setup`")
        self.rate, self.version = int(info["rate"]), info["version"]


def _zygote() -> _Zygote:
    # One per process: a forked worker must not share its parent's pipes.
    return _zygote_for(os.getpid())


@functools.cache
def _zygote_for(pid: int) -> _Zygote:
    return _Zygote()


def program() -> str:
    return f"espeak-ng {_zygote().version} ({PACKAGE} {package_version('espeak-ng', PACKAGE)})"


def check_installed() -> None:
    _zygote()


@functools.cache
def variants() -> frozenset[str]:
    """The voice variants (timbres) in the package's data: m1-m8, f1-f5, klatt, ..."""
    return frozenset(p.name for p in _zygote().variants_dir.iterdir())


def check_language(language: str) -> None:
    if _zygote().ask({"voice": language})[0] != 0:
        raise ValueError(f"espeak-ng has no voice {language!r}; "
                         "its languages are the names in espeak-ng's `--voices=en` list")


def check_variant(variant: str) -> None:
    if variant not in variants():
        raise ValueError(f"espeak-ng has no variant {variant!r}; it has "
                         "m1-m8, f1-f5, whisper, croak, klatt and more (espeak-ng-data/voices/!v)")


def check_voice(name: str) -> None:
    language, _, variant = name.partition("+")
    check_language(language)
    if variant:
        check_variant(variant)


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """`pitch` on espeak-ng's 0-99 scale (50 neutral); `speed` relative to 175 wpm."""
    zygote = _zygote()
    status, payload = zygote.ask({"voice": name, "text": text, "wpm": round(WPM * speed),
                                  "pitch": int(round(np.clip(pitch, 0, 99)))})
    if status != 0:
        raise TTSError(payload.decode(errors="replace"))
    return np.frombuffer(payload, "<i2").astype(np.float32) / 32768.0, zygote.rate
