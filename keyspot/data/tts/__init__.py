"""Text to speech with engines that keyspot pins itself.

- espeak: espeak-ng's library and data from the espeakng-loader wheel;
- flite: flite compiled to WebAssembly, run by wasmtime;
- gnuspeech: GnuSpeech's articulatory synthesiser, WebAssembly on wasmtime;
- pico: SVOX Pico (ttspico), built from its pinned source with its voices;
- piper: Piper's neural voices (piper-tts on ONNX Runtime), each voice's
  model from a pinned package that carries it;
- kokoro: Kokoro-82M's voices (ONNX Runtime), from pinned packages that
  carry the model and the voices.

None comes from the Linux distribution: requirements.lock and
keyspot.data.tts.install pin them, so the same text, voice and prosody
give the same samples on Debian 12 and 13 alike.

A voice is `engine:name`, e.g. `espeak:en-us+f3`, `flite:slt`, `pico:en-US`,
`piper:en_US-joe-medium`, `kokoro:jm_kumo`, `gnuspeech:female`.
`synthesize` returns the engine's float32 samples at the engine's own rate;
the caller resamples and places them in a clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keyspot.data.tts import espeak, flite, gnuspeech, kokoro, pico, piper
from keyspot.data.tts.base import MissingToolError, TTSError, Voice, run_wasm_here

__all__ = ["ENGINES", "MissingToolError", "TTSError", "Voice", "check_tools", "check_voice",
           "parse_voice", "program", "run_wasm_here", "synthesize", "take_key"]

ENGINES = {"espeak": espeak, "flite": flite, "gnuspeech": gnuspeech, "kokoro": kokoro, "pico": pico,
           "piper": piper}


def parse_voice(spec: str) -> Voice:
    engine, sep, name = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"{spec!r} is not engine:name (e.g. espeak:en-us+f3, flite:slt, pico:en-US or piper:en_US-joe-medium)")
    if engine not in ENGINES:
        raise ValueError(f"{spec!r}: unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    return Voice(engine, name)


def check_tools(engines) -> None:
    """Raise MissingToolError unless these engines are installed and load."""
    for engine in sorted(set(engines)):
        ENGINES[engine].check_installed()


def check_voice(voice: Voice) -> None:
    """Raise ValueError if the engine does not have this voice."""
    ENGINES[voice.engine].check_voice(voice.name)


def program(engine: str) -> str:
    """The engine and the pinned package it comes from, e.g. for a dataset report."""
    return ENGINES[engine].program()


def take_key(engine: str) -> str:
    """What an engine's takes depend on, for the speech cache: its program
    and, for the ONNX voices, the order their Softmax sums in, so that takes
    spoken before it was fixed are spoken again."""
    module = ENGINES[engine]
    return f"{module.program()}; {module.SOFTMAX}" if hasattr(module, "SOFTMAX") else module.program()


def synthesize(voice: Voice, text: str, speed: float, pitch: float,
               workdir: Path | None = None) -> tuple[np.ndarray, int]:
    """Speak `text` (a word or a sentence); return mono float32 samples and their rate.

    A final `?`, `!` or `,` changes espeak-ng's and Pico's intonation (flite
    says a single word the same way whatever follows it). `speed` is
    relative (1.0 = the voice's own rate); `pitch` is espeak-ng's 0-99
    scale with 50 neutral, mapped to an f0 shift by the others.
    """
    samples, rate = ENGINES[voice.engine].synthesize(voice.name, text, speed, pitch)
    if not np.any(samples):
        raise TTSError(f"{voice.engine} returned only silence for {text!r}")
    return samples, rate
