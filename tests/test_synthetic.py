"""The synthetic dataset, generated with the real espeak-ng, flite and SVOX Pico."""

import copy
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from keyspot import params as keyspot_params
from keyspot.data import speech_cache, synthetic, tts
from keyspot.data.manifest import HELD_OUT_ENGINE, SPLITS, read_manifest
from keyspot.data.sentences import read_sentences

REPO = Path(__file__).resolve().parents[1]
ACCENTS = ("en-us", "en-gb-x-rp", "en-029")
VARIANTS = ("f3", "m2", "whisper", "croak")
FLITE = ("slt", "kal")
SPEAKERS = {*(f"espeak-ng:{v}" for v in VARIANTS), *(f"flite:{v}" for v in FLITE)}


@pytest.fixture(scope="module")
def params(smoke_params):
    return smoke_params


def tiny(params, **changes):
    """6 voices (espeak-ng in three accents, whisper and croak; flite at 16 and
    8 kHz), every noise kind with babble, rooms, microphones and context, 30
    clips: a few seconds. No engine held out (see the test of that)."""
    values = dict(espeak_accents=ACCENTS, espeak_variants=VARIANTS, flite_voices=FLITE,
                  pico_voices=(), piper_voices=(), kokoro_voices=(), held_out_engine="",
                  keywords=("yes", "no"), unknown_words=("bed", "cat", "dog"), near_miss_words=(),
                  takes_per_keyword=1, unknown_per_voice=2, silence_per_voice=1,
                  gain_db_range=(-12.0, 0.0), split_fractions={"val": 0.2, "test": 0.2},
                  noise=dataclasses.replace(params.dataset.noise, kinds=synthetic.NOISE_KINDS,
                                            silence_dbfs_range=(-65.0, -40.0)),
                  workers=1)
    values.update(changes)
    return dataclasses.replace(params.dataset, **values)


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(params, tmp_path_factory):
    """The tiny dataset rendered twice: in-process, then on two worker processes."""
    one = tmp_path_factory.mktemp("one") / "raw"
    two = tmp_path_factory.mktemp("two") / "raw"
    s1 = synthetic.generate(tiny(params, workers=1), params.seed, one, progress=False)
    s2 = synthetic.generate(tiny(params, workers=2), params.seed, two, progress=False)
    return s1, one, s2, two


def test_same_bytes_whatever_the_worker_count(generated):
    s1, one, s2, two = generated
    assert s1.clips == s2.clips == 30 and s1.skipped == []
    assert _hashes(one) == _hashes(two)
    assert s1.sources == s2.sources


def test_the_seed_changes_the_audio(params, tmp_path):
    clip = synthetic.Clip("espeak-ng:f3", "yes", "yes", 0, "train")
    babble = np.ones((1, 100), np.float32)
    a, _, _, _ = synthetic.render(clip, tiny(params), 1, [], babble)
    b, _, _, _ = synthetic.render(clip, tiny(params), 2, [], babble)
    assert a.tobytes() != b.tobytes()


def test_takes_vary_accent_intonation_and_background(params, tmp_path, monkeypatch):
    """Each take draws its accent, final punctuation and noise: check what reached the engines.
    The clips render in worker processes, so the calls are recorded in files."""
    monkeypatch.setenv("KEYSPOT_CACHE", str(tmp_path / "cache"))   # nothing spoken before
    real, real_noise = tts.synthesize, synthetic.noise
    calls = tmp_path / "spoken.jsonl"
    noise_calls = tmp_path / "noises.txt"

    def record(voice, text, *args):
        with calls.open("a") as f:
            f.write(json.dumps([str(voice), text]) + "\n")
        return real(voice, text, *args)

    def record_noise(rng, n, kind, babble):
        with noise_calls.open("a") as f:
            f.write(kind + "\n")
        return real_noise(rng, n, kind, babble)

    monkeypatch.setattr(tts, "synthesize", record)
    monkeypatch.setattr(synthetic, "noise", record_noise)
    dataset = tiny(params, keywords=("yes",), takes_per_keyword=8, unknown_per_voice=0,
                   silence_per_voice=0, espeak_variants=("f3", "m2", "m3"), flite_voices=())
    synthetic.generate(dataset, params.seed, tmp_path / "raw", progress=False)
    spoken = [tuple(json.loads(line)) for line in calls.read_text().splitlines()]
    noises = noise_calls.read_text().split()
    words = [(v, t) for v, t in spoken if t.rstrip(".?!,") == "yes"]
    context = [t for v, t in spoken if t in dataset.context.words]
    assert context, "some takes are said in context"
    assert len(words) == 24
    accents = {v.split(":")[1].split("+")[0] for v, _ in words}
    assert accents == set(ACCENTS)
    assert {t[-1] for _, t in words} == set(synthetic.INTONATIONS)
    assert set(noises) == set(synthetic.NOISE_KINDS)
    babble = [(v, t) for v, t in spoken if t in dataset.noise.babble_sentences]
    assert len(babble) == synthetic.BABBLE_RENDERS


def test_babble_is_spoken_by_training_speakers_only(params):
    dataset = tiny(params, espeak_variants=tuple(f"m{i}" for i in range(1, 9)))
    clips = synthetic.plan(dataset, params.seed)
    train = {c.voice for c in clips if c.split == "train"}
    sentences = synthetic.babble_plan(dataset, params.seed, sorted(train))
    variants = {s.voice.split("+")[-1] if s.voice.startswith("espeak") else s.voice for s in sentences}
    held_out = {c.voice.split(":")[1] for c in clips if c.split != "train"}
    assert len(sentences) == synthetic.BABBLE_RENDERS and len(variants) > 2
    assert not variants & held_out
    assert not synthetic.babble_plan(
        tiny(params, noise=dataclasses.replace(dataset.noise, kinds=("white",))), params.seed, train)


def test_every_voice_says_each_near_miss_as_often_as_asked(params):
    dataset = tiny(params, near_miss_words=("nope", "yet"), near_miss_takes=2, unknown_per_voice=4)
    clips = synthetic.plan(dataset, params.seed)
    voices = {c.voice for c in clips}
    near = [c for c in clips if c.word in dataset.near_miss_words]
    assert {c.label for c in near} == {synthetic.UNKNOWN}
    assert Counter((c.voice, c.word) for c in near) == {(v, w): 2 for v in voices for w in ("nope", "yet")}
    # The other unknown words are still drawn, balanced, unknown_per_voice a voice.
    drawn = [c for c in clips if c.label == synthetic.UNKNOWN and c.word not in dataset.near_miss_words]
    assert Counter(c.voice for c in drawn) == {v: 4 for v in voices}
    assert {c.word for c in drawn} == set(dataset.unknown_words)
    assert len({c.path for c in clips}) == len(clips)
    assert not [c for c in synthetic.plan(tiny(params, near_miss_words=("nope",), near_miss_takes=0), params.seed)
                if c.word == "nope"]


def test_kal16_is_kal_and_stays_in_its_split(params):
    dataset = tiny(params, flite_voices=("kal", "kal16", "slt", "awb", "rms"))
    clips = synthetic.plan(dataset, params.seed)
    split = {c.voice: c.split for c in clips}
    assert split["flite:kal"] == split["flite:kal16"]
    assert synthetic.speaker("flite:kal16") == "flite:kal"
    assert synthetic.speaker("espeak-ng:f3") == "espeak-ng:f3"
    # Kokoro's Spanish and Portuguese Alex are one person, as are its Santas.
    assert synthetic.speaker("kokoro:em_alex") == synthetic.speaker("kokoro:pm_alex") == "kokoro:alex"
    assert synthetic.speaker("kokoro:am_santa") == synthetic.speaker("kokoro:pm_santa")
    assert synthetic.speaker("kokoro:af_heart") == "kokoro:af_heart"


def test_training_engines_speak_in_train_only_and_the_others_fill_the_test_splits(params):
    dataset = tiny(params, flite_voices=("kal", "kal16", "slt", "awb", "rms"), training_engines=("flite",))
    split = {c.voice: c.split for c in synthetic.plan(dataset, params.seed)}
    assert {s for v, s in split.items() if v.startswith("flite:")} == {"train"}
    espeak = [s for v, s in split.items() if v.startswith("espeak-ng:")]
    assert "val" in espeak and "test" in espeak


def test_training_engine_voices_say_everything_as_many_times_over_as_asked(params):
    once = tiny(params, flite_voices=("kal", "slt"), training_engines=("flite",), near_miss_words=("nope",),
                unknown_per_voice=3, takes_per_keyword=2)
    twice = dataclasses.replace(once, training_engine_takes=2)
    before, after = synthetic.plan(once, params.seed), synthetic.plan(twice, params.seed)

    def count(clips, voice):
        return Counter(c.label for c in clips if c.voice == voice)

    for voice in ("flite:kal", "flite:slt"):
        assert count(after, voice) == {k: 2 * n if k != synthetic.SILENCE else n
                                       for k, n in count(before, voice).items()}
    espeak = {c.voice for c in before if c.voice.startswith("espeak-ng:")}
    assert espeak and all(count(after, v) == count(before, v) for v in espeak)
    # The takes of once are takes of twice: a doubled dataset speaks only the new ones.
    assert {c.path for c in before} <= {c.path for c in after}
    assert len({c.path for c in after}) == len(after)


def test_an_engine_can_say_each_keyword_a_number_of_times_of_its_own(params):
    dataset = tiny(params, flite_voices=("kal", "slt"), near_miss_words=("nope", "yet", "snow", "town"),
                   unknown_per_voice=8, takes_per_keyword=4, engine_takes_per_keyword={"flite": 1})
    clips = synthetic.plan(dataset, params.seed)

    def count(voice):
        said = Counter(c.label if c.word not in dataset.near_miss_words else "near miss"
                       for c in clips if c.voice == voice)
        return {label: said[label] for label in ("yes", "no", synthetic.UNKNOWN, "near miss", synthetic.SILENCE)}

    # A quarter of the keyword takes and of the unknown words; near misses and silence as any voice.
    assert count("flite:kal") == count("flite:slt") == {"yes": 1, "no": 1, synthetic.UNKNOWN: 2,
                                                        "near miss": 1, synthetic.SILENCE: 1}
    assert count("espeak-ng:whisper") == {"yes": 4, "no": 4, synthetic.UNKNOWN: 8, "near miss": 4, synthetic.SILENCE: 1}
    # Each flite voice says a near miss of its own drawing.
    assert len({c.word for c in clips if c.voice.startswith("flite:") and c.word in dataset.near_miss_words}) >= 1


def test_the_held_out_engine_says_every_word_in_proportion(params):
    """Held-out voices say keywords held_out_takes_per_keyword times, and
    unknown words and near misses as many times over as a test voice does:
    the test split's mix of labels, in more clips."""
    dataset = tiny(params, pico_voices=("en-US",), held_out_engine="pico", near_miss_words=("nope", "yet"),
                   unknown_per_voice=3, takes_per_keyword=2, held_out_takes_per_keyword=6, near_miss_takes=1)
    clips = synthetic.plan(dataset, params.seed)

    def count(voice):
        said = Counter(c.label if c.word not in dataset.near_miss_words else "near miss"
                       for c in clips if c.voice == voice)
        return {label: said[label] for label in ("yes", "no", synthetic.UNKNOWN, "near miss", synthetic.SILENCE)}

    test_voice = next(c.voice for c in clips if c.split == "test")
    assert count(test_voice) == {"yes": 2, "no": 2, synthetic.UNKNOWN: 3, "near miss": 2, synthetic.SILENCE: 1}
    assert count("pico:en-US") == {"yes": 6, "no": 6, synthetic.UNKNOWN: 9, "near miss": 6, synthetic.SILENCE: 1}
    assert {c.split for c in clips if c.voice == "pico:en-US"} == {HELD_OUT_ENGINE}
    # An engine of fewer takes of its own, held out, still says every word in proportion.
    fewer = dataclasses.replace(dataset, engine_takes_per_keyword={"pico": 1})
    clips = synthetic.plan(fewer, params.seed)
    assert count("pico:en-US") == {"yes": 6, "no": 6, synthetic.UNKNOWN: 9, "near miss": 6, synthetic.SILENCE: 1}


def test_outputs_follow_the_contract(generated, params):
    _, root, _, _ = generated
    assert sorted(p.name for p in root.iterdir()) == ["clips", "labels.json", "manifest.csv"]
    assert not root.with_name("raw.tmp").exists()
    labels = json.loads((root / "labels.json").read_text())
    assert labels == ["_silence_", "_unknown_", "yes", "no"]
    rows = read_manifest(root / "manifest.csv")
    assert [r.path for r in rows] == sorted(r.path for r in rows)
    assert {r.path for r in rows} == {p.relative_to(root).as_posix()
                                      for p in root.rglob("*.wav")}
    for r in rows:
        assert r.path.startswith(f"clips/{r.label}/") and r.speaker in SPEAKERS
    assert b"\r" not in (root / "manifest.csv").read_bytes()


def test_held_out_voices_read_sentences_for_the_streams(params, tmp_path):
    """Every val and test voice reads sentences_per_voice of its split's
    stream_sentences, whole, into a folder of their own; never a training
    voice. The same bytes on one worker and on two."""
    folders = [tmp_path / "one", tmp_path / "two"]
    counts = [synthetic.generate_sentences(tiny(params, workers=w), params.seed, f)
              for w, f in zip((1, 2), folders, strict=True)]
    assert _hashes(folders[0]) == _hashes(folders[1])
    clips = synthetic.plan(tiny(params), params.seed)
    held_out = {(synthetic.speaker(c.voice), c.split) for c in clips if c.split != "train"}
    read = read_sentences(folders[0])
    per_voice = params.dataset.sentences_per_voice
    assert counts == [len(read)] * 2 and len(read) == len(held_out) * per_voice
    assert Counter((r.speaker, r.split) for r in read) == {v: per_voice for v in held_out}
    assert {r.path for r in read} == {p.relative_to(folders[0]).as_posix() for p in folders[0].rglob("*.wav")}
    for r in read:
        assert r.path.startswith(f"{r.split}/") and r.text in getattr(params.dataset.stream_sentences, r.split)
        x, rate = soundfile.read(str(folders[0] / r.path), dtype="int16")
        assert rate == 16000 and len(x) > 16000 and np.abs(x).max() > 32768 * 10 ** (-20 / 20)
    assert b"\r" not in (folders[0] / "sentences.csv").read_bytes()
    # None to read: the header alone.
    assert synthetic.generate_sentences(tiny(params, sentences_per_voice=0), params.seed, folders[0]) == 0
    assert read_sentences(folders[0]) == [] and [p.name for p in folders[0].iterdir()] == ["sentences.csv"]


def test_clips_are_16k_mono_int16_one_second(generated):
    _, root, _, _ = generated
    for path in root.rglob("*.wav"):
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == \
            (16000, 1, 16000, "PCM_16", "WAV"), path


def test_speech_stands_above_the_silence_clips(generated):
    _, root, _, _ = generated
    rows = read_manifest(root / "manifest.csv")

    def peak(r):
        x, _ = soundfile.read(str(root / r.path), dtype="int16")
        return abs(int(x.astype(int).max())), abs(int(x.astype(int).min()))

    spoken = [max(peak(r)) for r in rows if r.label == "yes"]
    silent = [max(peak(r)) for r in rows if r.label == "_silence_"]
    assert min(spoken) > 32768 * 10 ** (-14 / 20)   # gain_db_range ends at -12 dB, peak -1 dBFS
    assert max(silent) < min(spoken)                # background RMS at most -40 dBFS


def test_splits_share_no_voice_and_train_has_every_label(generated):
    _, root, _, _ = generated
    rows = read_manifest(root / "manifest.csv")
    speakers = {s: {r.speaker for r in rows if r.split == s} for s in SPLITS}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    labels = json.loads((root / "labels.json").read_text())
    assert {r.label for r in rows if r.split == "train"} == set(labels)


def test_voice_split_sizes(params):
    voices = [f"espeak:v{i}" for i in range(29)]
    split = synthetic.split_voices(voices, {"val": 0.15, "test": 0.2}, params.seed)
    assert list(split.values()).count("val") == 4 and list(split.values()).count("test") == 6
    few = synthetic.split_voices(voices[:3], {"val": 0.01, "test": 0.01}, params.seed)
    assert sorted(few.values()) == ["test", "train", "val"]
    assert synthetic.split_voices(voices, {"val": 0.15, "test": 0.2}, params.seed + 1) != split
    with pytest.raises(keyspot_params.ParamsError, match="none for train"):
        synthetic.split_voices(voices[:4], {"val": 0.4, "test": 0.4}, params.seed)


def test_a_new_voice_leaves_the_others_in_their_splits(params):
    voices = [f"espeak:v{i}" for i in range(40)]
    fractions = {"val": 0.15, "test": 0.2}
    before = synthetic.split_voices(voices, fractions, params.seed)
    for new in ("piper:a", "piper:b", "flite:c", "espeak:zz"):
        after = synthetic.split_voices([*voices, new], fractions, params.seed)
        moved = [v for v in voices if after[v] != before[v]]
        assert len(moved) <= 2   # at most the neighbour of each boundary


@pytest.mark.parametrize("key, value, message", [
    ("espeak_accents", ("en-us", "xx-nope"), r"espeak_accents\[1\]: espeak-ng has no voice 'xx-nope'"),
    ("espeak_variants", ("f3", "m2", "nope"), r"espeak_variants\[2\]: espeak-ng has no variant 'nope'"),
    ("flite_voices", ("slt", "nope"), r"flite_voices\[1\]: flite has no voice 'nope'"),
    ("flite_voices", ("slt", "awb_time"), r"flite_voices\[1\]: .*awb_time is a limited-domain voice"),
    ("espeak_variants", ("f3", "m2", "f3"), r"espeak_variants: 'f3' is listed twice"),
    ("noise.kinds", ("white", "hum"), r"noise\.kinds\[1\]: 'hum' is not one of"),
    ("noise.babble_sentences", ("Please go home.",), r"noise\.babble_sentences\[0\]: says the keyword 'go'"),
    ("stream_sentences", synthetic.StreamSentences(test=("Fine.", "Then say no there.")),
     r"stream_sentences\.test\[1\]: says the keyword 'no'"),
    ("stream_sentences", synthetic.StreamSentences(val=("Fine.", "Why not?"), test=("Fine.",)),
     r"stream_sentences\.test: 'Fine\.' is also in val; each split reads its own"),
    ("stream_sentences", synthetic.StreamSentences(val=()),
     r"stream_sentences\.val: no sentences, but sentences_per_voice is above 0"),
    ("noise.babble_talkers", (4, 2), r"noise\.babble_talkers: \[4, 2\] is not \[low, high\]"),
    ("lead_silence_s_range", (-0.1, 0.2), r"lead_silence_s_range: must not be negative"),
    ("near_miss_words", ("nope", "yes"), r"near_miss_words: yes also a keyword"),
    ("near_miss_words", ("nope", "cat"), r"near_miss_words: cat also in unknown_words; list it once"),
    ("near_miss_words", ("nope", "nope"), r"near_miss_words: lists a word twice"),
    ("near_miss_takes", -1, r"near_miss_takes: must not be negative"),
])
def test_bad_setting_is_a_clear_params_error(params, tmp_path, key, value, message):
    if key.startswith("noise."):
        dataset = tiny(params)
        dataset = tiny(params, noise=dataclasses.replace(dataset.noise, **{key[6:]: value}))
        if key == "noise.babble_sentences":
            dataset = dataclasses.replace(dataset, keywords=("yes", "go"))
    else:
        dataset = tiny(params, **{key: value})
    with pytest.raises(keyspot_params.ParamsError, match=r"dataset\." + message):
        synthetic.generate(dataset, params.seed, tmp_path / "raw", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, wasm, voices", [
    ("flite", "flite.wasm", {}),
    ("gnuspeech", "gnuspeech.wasm", {"gnuspeech_voices": ("female",)}),
])
def test_a_missing_engine_says_how_to_install_it(params, tmp_path, monkeypatch, name, wasm, voices):
    engine = getattr(tts, name)
    monkeypatch.setattr(engine, "wasm_path", lambda: tmp_path / "nowhere" / wasm)
    engine._module.cache_clear()
    label = {"flite": "flite", "gnuspeech": "GnuSpeech"}[name]
    try:
        with pytest.raises(tts.MissingToolError, match=rf"{label}: .*nowhere/{wasm} is missing; run `make setup`"):
            synthetic.generate(tiny(params, **voices), params.seed, tmp_path / "raw", progress=False)
    finally:
        engine._module.cache_clear()
    assert not (tmp_path / "raw").exists()


def test_engine_failure_is_reported_skipped_and_counted(params, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEYSPOT_CACHE", str(tmp_path / "cache"))   # nothing spoken before
    real = tts.synthesize

    def flaky(voice, word, *args):
        if str(voice) == "flite:slt" and word.rstrip(".?!,") == "no":
            raise tts.TTSError("flite exited with 1")
        return real(voice, word, *args)

    monkeypatch.setattr(tts, "synthesize", flaky)
    summary = synthetic.generate(tiny(params), params.seed, tmp_path / "raw", progress=False)
    assert summary.skipped == [("clips/no/flite-slt_no_0.wav", "flite exited with 1")]
    assert summary.clips == 29 and "1 skipped" in summary.line()
    assert "flite:slt 'no'" in capsys.readouterr().err
    assert len(read_manifest(tmp_path / "raw" / "manifest.csv")) == 29


def test_a_failed_run_keeps_the_previous_output(params, tmp_path, monkeypatch):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "manifest.csv").write_text("previous\n")

    def broken(*args):
        raise KeyboardInterrupt

    monkeypatch.setenv("KEYSPOT_CACHE", str(tmp_path / "cache"))   # nothing spoken before
    monkeypatch.setattr(tts, "synthesize", broken)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(tiny(params), params.seed, out, progress=False)
    assert (out / "manifest.csv").read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]


def _stage(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py")], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_stage_writes_data_raw(smoke_dict, tmp_path):
    data = copy.deepcopy(smoke_dict)
    data["dataset"].update(espeak_accents=list(ACCENTS), espeak_variants=list(VARIANTS),
                           flite_voices=list(FLITE), pico_voices=["en-US"], keywords=["yes", "no"],
                           takes_per_keyword=1, held_out_takes_per_keyword=2, unknown_per_voice=1,
                           silence_per_voice=1, near_miss_takes=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    result = _stage(tmp_path)
    assert result.returncode == 0, result.stderr
    # 8 voices (Piper's and Kokoro's too) x 4; Pico says every word twice as
    # often as they do (held_out_takes_per_keyword 2 to takes_per_keyword 1):
    # 2 keywords x 2 takes, 2 unknown words, and its silence.
    assert result.stdout.startswith("fetch: 39 clips")
    rows = read_manifest(tmp_path / "data" / "raw" / "manifest.csv")
    assert len(rows) == 39 and {r.split for r in rows if r.speaker == "pico:en-US"} == {HELD_OUT_ENGINE}
    assert len([r for r in rows if r.speaker == "piper:en_US-joe-medium"]) == 4
    assert len([r for r in rows if r.speaker == "kokoro:jm_kumo"]) == 4
    report = json.loads((tmp_path / "reports" / "data.json").read_text())
    assert report["clips"]["total"] == 39 and report["clips"][HELD_OUT_ENGINE] == 7
    assert report["skipped"] == []
    # Kokoro speaks at 24 kHz, espeak-ng and Piper at 22.05 kHz, flite's slt and Pico at 16 kHz, kal at 8 kHz
    assert set(report["sample_rates"]) == {"24000", "22050", "16000", "8000"}


@pytest.mark.parametrize("breakage", ["bad voice", "no params.yaml"])
def test_stage_fails_in_one_line_without_traceback(smoke_dict, tmp_path, breakage):
    if breakage == "bad voice":
        data = copy.deepcopy(smoke_dict)
        data["dataset"]["flite_voices"][0] = "nope"
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    result = _stage(tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("fetch: ")
    assert not (tmp_path / "data").exists()


def test_a_new_noise_setting_speaks_nothing_again(params, tmp_path, monkeypatch):
    """Takes come from the cache when only the background changed, and a
    cached take gives the same bytes as a freshly spoken one."""
    monkeypatch.setenv("KEYSPOT_CACHE", str(tmp_path / "cache"))
    real = tts.synthesize
    calls = tmp_path / "spoken.txt"

    def counted(*args):
        with calls.open("a") as f:
            f.write("x\n")
        return real(*args)

    monkeypatch.setattr(tts, "synthesize", counted)
    dataset = tiny(params)
    synthetic.generate(dataset, params.seed, tmp_path / "first", progress=False)
    spoken = len(calls.read_text().split())
    assert spoken >= 20 and speech_cache.cache_dir() == tmp_path / "cache" / "speech"
    louder = tiny(params, noise=dataclasses.replace(dataset.noise, snr_db_range=(5.0, 10.0)))
    synthetic.generate(louder, params.seed, tmp_path / "louder", progress=False)
    assert len(calls.read_text().split()) == spoken        # not one word spoken again
    assert _hashes(tmp_path / "louder") != _hashes(tmp_path / "first")
    monkeypatch.setenv("KEYSPOT_CACHE", str(tmp_path / "empty-cache"))
    synthetic.generate(dataset, params.seed, tmp_path / "again", progress=False)
    assert _hashes(tmp_path / "again") == _hashes(tmp_path / "first")
