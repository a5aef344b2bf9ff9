"""Text to speech with espeak-ng and flite, run as subprocesses.

A voice is `engine:name`, e.g. `espeak:en-us+f3` or `flite:slt`. `synthesize`
returns the engine's float32 samples at the engine's own rate; the caller
resamples and places them in a clip.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np

from keyspot import audio
from keyspot.data.source import SourceError

PROGRAMS = {"espeak": "espeak-ng", "flite": "flite"}
INSTALL_HINT = "apt-get install espeak-ng flite"

ESPEAK_WPM = 175  # espeak-ng's default rate; `speed` scales it
# flite has no relative pitch control, only an absolute target f0 mean. These
# are the measured means of each voice, so that pitch 50 leaves a voice as it
# is. rms ignores int_f0_target_mean: its pitch does not vary.
FLITE_F0_HZ = {"kal": 95.0, "kal16": 95.0, "awb": 130.0, "rms": 105.0, "slt": 170.0}
FLITE_DEFAULT_F0_HZ = 120.0
# flite voices that cannot speak arbitrary words: awb_time is a limited-domain
# voice that only says clock times and answers anything else with a click.
FLITE_LIMITED = {"awb_time": "a limited-domain voice that speaks only clock times"}


class MissingToolError(SourceError):
    """A text-to-speech program is not installed."""


class TTSError(RuntimeError):
    """The engine failed on one word (nonzero exit or no audio)."""


@dataclasses.dataclass(frozen=True)
class Voice:
    engine: str   # "espeak" or "flite"
    name: str     # e.g. "en-us+f3" or "slt"

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def parse_voice(spec: str) -> Voice:
    engine, sep, name = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"{spec!r} is not engine:name (e.g. espeak:en-us+f3 or flite:slt)")
    if engine not in PROGRAMS:
        raise ValueError(f"{spec!r}: unknown engine {engine!r}; use one of {', '.join(PROGRAMS)}")
    return Voice(engine, name)


def check_tools(voices) -> None:
    """Raise MissingToolError unless the programs these voices need are on PATH."""
    for engine in sorted({v.engine for v in voices}):
        program = PROGRAMS[engine]
        if shutil.which(program) is None:
            raise MissingToolError(
                f"{program} not found on PATH; it speaks the {engine}: voices of the "
                f"synthetic dataset. Install it with `{INSTALL_HINT}` (Debian/Ubuntu)")


@functools.cache
def _espeak_variants() -> frozenset[str]:
    out = _run(["espeak-ng", "--voices=variant"]).stdout.decode(errors="replace")
    names = set()
    for line in out.splitlines()[1:]:
        for field in line.split():
            if field.startswith("!v/"):
                names.add(field[3:])
    return frozenset(names)


@functools.cache
def _flite_voices() -> tuple[str, ...]:
    out = _run(["flite", "-lv"]).stdout.decode(errors="replace")
    return tuple(out.split(":", 1)[-1].split())


def check_voice(voice: Voice) -> None:
    """Raise ValueError if the engine does not have this voice.

    Both engines would otherwise carry on: flite falls back to kal, espeak-ng
    ignores an unknown variant.
    """
    if voice.engine == "flite":
        if voice.name not in _flite_voices():
            raise ValueError(f"flite has no voice {voice.name!r}; "
                             f"`flite -lv` lists {', '.join(_flite_voices())}")
        if voice.name in FLITE_LIMITED:
            raise ValueError(f"flite's {voice.name} is {FLITE_LIMITED[voice.name]}; leave it out")
        return
    language, _, variant = voice.name.partition("+")
    check_espeak_language(language)
    if variant:
        check_espeak_variant(variant)


def check_espeak_language(language: str) -> None:
    if _run(["espeak-ng", "-q", "-v", language, "x"]).returncode != 0:
        raise ValueError(f"espeak-ng has no voice {language!r}; `espeak-ng --voices=en` lists them")


def check_espeak_variant(variant: str) -> None:
    if variant not in _espeak_variants():
        raise ValueError(f"espeak-ng has no variant {variant!r}; "
                         "`espeak-ng --voices=variant` lists them (e.g. m1-m8, f1-f5, whisper, croak)")


def synthesize(voice: Voice, word: str, speed: float, pitch: float,
               workdir: Path) -> tuple[np.ndarray, int]:
    """Speak `word` (or a sentence); return mono float32 samples and their rate.

    A final `?`, `!` or `,` changes espeak-ng's intonation (flite says a
    single word the same way whatever follows it).

    `speed` is relative (1.0 = the voice's own rate); `pitch` is espeak-ng's
    0-99 scale with 50 neutral, mapped to an f0 shift for flite.
    """
    wav = Path(workdir) / "tts.wav"
    wav.unlink(missing_ok=True)
    if voice.engine == "espeak":
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(round(ESPEAK_WPM * speed)),
               "-p", str(int(round(np.clip(pitch, 0, 99)))), "-a", "100", "-w", str(wav), word]
    else:
        f0 = FLITE_F0_HZ.get(voice.name, FLITE_DEFAULT_F0_HZ) * 2.0 ** ((pitch - 50.0) / 80.0)
        cmd = ["flite", "-voice", voice.name, "-t", word, "-o", str(wav),
               "--setf", f"duration_stretch={1.0 / speed:.4f}",
               "--setf", f"int_f0_target_mean={f0:.1f}"]
    try:
        result = _run(cmd)
    except subprocess.TimeoutExpired:
        raise TTSError(f"{cmd[0]} did not finish within 60 s") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise TTSError(f"{cmd[0]} exited with {result.returncode}"
                       + (f": {message[-1]}" if message else ""))
    try:
        samples, rate = audio.decode(wav)
    except audio.AudioError as err:
        raise TTSError(f"{cmd[0]} wrote no usable audio ({err})") from None
    finally:
        wav.unlink(missing_ok=True)
    mono = audio.to_mono(samples)
    if not np.any(mono):
        raise TTSError(f"{cmd[0]} wrote only silence")
    return mono, rate


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
