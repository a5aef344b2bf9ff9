"""The synthetic dataset, generated with the real espeak-ng and flite."""

import copy
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import yaml

from keyspot import params as keyspot_params
from keyspot.data import synthetic, tts
from keyspot.data.manifest import SPLITS, read_manifest

REPO = Path(__file__).resolve().parents[1]
VOICES = ("espeak:en-us+f3", "espeak:en+m2", "espeak:en-gb-x-rp+m3", "flite:slt", "flite:kal")


@pytest.fixture(scope="module")
def params(smoke_params):
    return smoke_params


def tiny(params, **changes):
    """5 voices (espeak, flite 16 kHz, flite 8 kHz), 25 clips: well under a second."""
    values = dict(voices=VOICES, keywords=("yes", "no"), unknown_words=("bed", "cat", "dog"),
                  takes_per_keyword=1, unknown_per_voice=2, silence_per_voice=1,
                  split_fractions={"val": 0.2, "test": 0.2}, workers=1)
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
    assert s1.clips == s2.clips == 25 and s1.skipped == 0
    assert _hashes(one) == _hashes(two)


def test_the_seed_changes_the_audio(params, tmp_path):
    clip = synthetic.Clip("espeak:en-us+f3", "yes", "yes", 0, "train")
    a, _ = synthetic.render(clip, tiny(params), 1, tmp_path)
    b, _ = synthetic.render(clip, tiny(params), 2, tmp_path)
    assert a.tobytes() != b.tobytes()


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
        assert r.path.startswith(f"clips/{r.label}/") and r.speaker in VOICES
    assert b"\r" not in (root / "manifest.csv").read_bytes()


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
    assert max(silent) < min(spoken)


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


@pytest.mark.parametrize("voice, message", [
    ("espeak:xx-nope", "espeak-ng has no voice 'xx-nope'"),
    ("espeak:en-us+nope", "espeak-ng has no variant 'nope'"),
    ("flite:nope", "flite has no voice 'nope'"),
    ("festival:kal", "unknown engine 'festival'"),
    ("slt", "is not engine:name"),
])
def test_bad_voice_is_a_clear_params_error(params, tmp_path, voice, message):
    dataset = tiny(params, voices=(*VOICES[:3], voice))
    with pytest.raises(keyspot_params.ParamsError, match=r"dataset\.voices\[3\]: .*" + message):
        synthetic.generate(dataset, params.seed, tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists() and not (tmp_path / "raw.tmp").exists()


def test_missing_program_names_the_package(params, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(tts.MissingToolError, match=r"espeak-ng not found.*apt-get install espeak-ng flite"):
        synthetic.generate(tiny(params), params.seed, tmp_path / "raw", progress=False)


def test_engine_failure_is_reported_skipped_and_counted(params, tmp_path, monkeypatch, capsys):
    real = tts.synthesize

    def flaky(voice, word, *args):
        if str(voice) == "flite:slt" and word == "no":
            raise tts.TTSError("flite exited with 1")
        return real(voice, word, *args)

    monkeypatch.setattr(tts, "synthesize", flaky)
    summary = synthetic.generate(tiny(params), params.seed, tmp_path / "raw", progress=False)
    assert summary.skipped == 1 and summary.clips == 24
    assert "1 skipped" in summary.line()
    assert "flite:slt 'no'" in capsys.readouterr().err
    assert len(read_manifest(tmp_path / "raw" / "manifest.csv")) == 24


def test_a_failed_run_keeps_the_previous_output(params, tmp_path, monkeypatch):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "manifest.csv").write_text("previous\n")

    def broken(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tts, "synthesize", broken)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(tiny(params), params.seed, out, progress=False)
    assert (out / "manifest.csv").read_text() == "previous\n"
    assert not (tmp_path / "raw.tmp").exists()


def _stage(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py")], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_stage_writes_data_raw(smoke_dict, tmp_path):
    data = copy.deepcopy(smoke_dict)
    data["dataset"].update(voices=list(VOICES), keywords=["yes", "no"], takes_per_keyword=1,
                           unknown_per_voice=1, silence_per_voice=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    result = _stage(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fetch: 20 clips")
    assert len(read_manifest(tmp_path / "data" / "raw" / "manifest.csv")) == 20


@pytest.mark.parametrize("breakage", ["bad voice", "no params.yaml"])
def test_stage_fails_in_one_line_without_traceback(smoke_dict, tmp_path, breakage):
    if breakage == "bad voice":
        data = copy.deepcopy(smoke_dict)
        data["dataset"]["voices"][0] = "flite:nope"
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    result = _stage(tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("fetch: ")
    assert not (tmp_path / "data").exists()
