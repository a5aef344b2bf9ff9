"""The folder source on a messy folder: every rate, depth, format and length, and broken files."""

from __future__ import annotations

import copy
import dataclasses
import faulthandler
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from keyspot import audio
from keyspot.compose import compose
from keyspot.data import folder, report
from keyspot.data.folder import FolderDataset
from keyspot.data.manifest import SPLITS, read_manifest
from keyspot.features import extract
from keyspot.params import ParamsError, from_dict

REPO = Path(__file__).resolve().parents[1]

# (rate, channels, subtype, format, suffix, seconds): 8 to 192 kHz, mono and
# stereo, 8/16/24/32-bit integer and 32/64-bit float WAV, FLAC, OGG, from
# 5 ms to a minute.
GOOD = [
    (8000, 1, "PCM_U8", "WAV", ".wav", 0.005),
    (8000, 1, "PCM_16", "WAV", ".wav", 60.0),
    (11025, 2, "PCM_16", "WAV", ".wav", 0.4),
    (16000, 1, "PCM_16", "WAV", ".wav", 1.0),
    (22050, 2, "PCM_24", "WAV", ".wav", 1.7),
    (32000, 1, "PCM_32", "WAV", ".wav", 0.9),
    (44100, 2, "FLOAT", "WAV", ".wav", 2.5),
    (48000, 1, "DOUBLE", "WAV", ".wav", 0.25),
    (96000, 2, "PCM_24", "FLAC", ".flac", 1.2),
    (192000, 1, "PCM_16", "FLAC", ".flac", 0.6),
    (44100, 2, "VORBIS", "OGG", ".ogg", 3.0),
    (48000, 1, "VORBIS", "OGG", ".ogg", 0.8),
]
CLASSES = {"yes": 440.0, "no": 660.0, "wow": 880.0}   # wow is not a keyword: _unknown_
BAD = {
    "yes/truncated_header.wav": "not readable audio",
    "no/random_bytes.wav": "not readable audio",
    "no/empty.flac": "empty file",
    "yes/nan.wav": "holds NaN or infinite samples",
    "yes/notes.txt": "not an audio file",
    "stray.wav": "not in a class folder",
    "yes/.DS_Store": "hidden file",
}


def tone(rate: int, seconds: float, channels: int, freq: float) -> np.ndarray:
    t = np.arange(max(1, round(rate * seconds))) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1)


def write_audio(path: Path, x: np.ndarray, rate: int, subtype: str, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # In blocks: libsndfile crashes writing a long OGG in one call.
    with soundfile.SoundFile(str(path), "w", rate, x.shape[1], subtype, format=fmt) as f:
        for i in range(0, len(x), 8192):
            f.write(x[i:i + 8192])


def make_messy(root: Path) -> list[str]:
    """The folder, and the relative paths of its good files."""
    good = []
    for label, freq in CLASSES.items():
        for i, (rate, channels, subtype, fmt, suffix, seconds) in enumerate(GOOD):
            rel = f"{label}/take{i:02d}_{rate}_{subtype.lower()}{suffix}"
            if i % 3 == 0:
                rel = f"{label}/session2/take{i:02d}_{rate}{suffix}"   # files may sit deeper
            write_audio(root / rel, tone(rate, seconds, channels, freq), rate, subtype, fmt)
            good.append(rel)
    wav = (root / good[3]).read_bytes()
    (root / "yes/truncated_header.wav").write_bytes(wav[:30])
    (root / "no/random_bytes.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "no/empty.flac").write_bytes(b"")
    nan = tone(16000, 0.5, 1, 440.0)
    nan[100] = np.nan
    soundfile.write(str(root / "yes/nan.wav"), nan, 16000, subtype="FLOAT")
    (root / "yes/notes.txt").write_text("recorded in the kitchen\n")
    (root / "yes/.DS_Store").write_bytes(b"\0\1")
    write_audio(root / "stray.wav", tone(16000, 1.0, 1, 440.0), 16000, "PCM_16", "WAV")
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("ref: refs/heads/main\n")
    return sorted(good)


def dataset_for(root: Path, **changes) -> FolderDataset:
    values = dict(name="folder", root=str(root), keywords=("yes", "no"), other_folders="unknown",
                  split_csv="", speaker_regex="", split_fractions={"val": 0.25, "test": 0.25},
                  sample_rate=16000, clip_seconds=1.0, min_seconds=0.0, pad="end",
                  long_clips="centre", max_windows=0, workers=2)
    values.update(changes)
    return FolderDataset(**values)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy") / "audio"
    return root, make_messy(root)


@pytest.fixture(scope="module")
def fetched(messy, smoke_params, tmp_path_factory):
    root, good = messy
    out = tmp_path_factory.mktemp("fetched") / "raw"
    dataset = dataset_for(root)
    return folder.fetch(dataset, smoke_params.seed, out, progress=False), out, dataset


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_good_file_becomes_canonical_clips(messy, fetched):
    root, good = messy
    summary, out, _ = fetched
    assert sorted(s.path for s in summary.sources) == good
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == len(good) == summary.clips
    assert json.loads((out / "labels.json").read_text()) == ["_unknown_", "yes", "no"]
    for row in rows:
        info = soundfile.info(str(out / row.path))
        assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == \
            (16000, 1, 16000, "PCM_16", "WAV"), row.path
        assert row.path.startswith(f"clips/{row.label}/")
    per_label = {label: sum(1 for r in rows if r.label == label) for label in ("_unknown_", "yes", "no")}
    assert per_label == {"_unknown_": len(GOOD), "yes": len(GOOD), "no": len(GOOD)}
    assert {r.split for r in rows} == set(SPLITS)


def test_clips_keep_the_sound(messy, fetched):
    """A 660 Hz tone at 192 kHz in a FLAC is a 660 Hz tone at 16 kHz afterwards."""
    summary, out, _ = fetched
    rows = {r.path: r for r in read_manifest(out / "manifest.csv")}
    path = next(p for p in rows if p.startswith("clips/no/") and "192000" in p)
    pcm, _ = soundfile.read(str(out / path), dtype="int16")
    spectrum = np.abs(np.fft.rfft(pcm[:9600].astype(float)))   # 0.6 s of tone, then zeros
    assert abs(np.argmax(spectrum) * 16000 / 9600 - 660.0) < 2.0
    assert not pcm[9700:].any()                                # padded at the end


def test_bad_files_are_printed_and_listed_with_their_reason(messy, smoke_params, tmp_path, capfd):
    root, _ = messy
    summary = folder.fetch(dataset_for(root), smoke_params.seed, tmp_path / "raw",
                           progress=False)
    err = capfd.readouterr().err
    reasons = dict(summary.skipped)
    for path, reason in BAD.items():
        assert reason in reasons[path], (path, reasons[path])
        assert sum(line.startswith(f"fetch: skipped {path}: ") for line in err.splitlines()) == 1
    assert reasons[".git/"] == "hidden folder, not read"
    assert set(reasons) == {*BAD, ".git/"}
    assert "Traceback" not in err


def test_the_features_stage_reads_the_clips(fetched, smoke_params, tmp_path):
    summary, out, dataset = fetched
    params = dataclasses.replace(smoke_params, dataset=dataset)
    counts = extract.run(params, out, tmp_path / "features", workers=1)
    assert counts == {s: sum(summary.counts[s].values()) for s in SPLITS}
    spec = json.loads((tmp_path / "features" / "spec.json").read_text())
    assert spec["labels"] == ["_unknown_", "yes", "no"]


def test_the_report_lists_every_bad_file(fetched, tmp_path):
    summary, out, dataset = fetched
    data = report.write(summary, dataset, out, tmp_path / "data.json", tmp_path / "data")
    assert {(s["path"], s["reason"]) for s in data["skipped"]} == set(summary.skipped)
    assert {"8000", "11025", "22050", "44100", "96000", "192000"} <= set(data["sample_rates"])
    assert {"WAV PCM_U8", "WAV PCM_32", "WAV DOUBLE", "FLAC PCM_24", "OGG VORBIS"} <= set(data["formats"])
    mono = sum(1 for g in GOOD if g[1] == 1) * len(CLASSES)
    assert data["channels"] == {"1": mono, "2": len(GOOD) * len(CLASSES) - mono}
    assert data["durations_s"]["min"] == 0.005 and data["durations_s"]["max"] == 60.0


def test_same_bytes_whatever_the_worker_count(messy, fetched, smoke_params, tmp_path):
    root, _ = messy
    _, out, dataset = fetched
    folder.fetch(dataclasses.replace(dataset, workers=1), smoke_params.seed, tmp_path / "raw",
                 progress=False)
    assert _hashes(tmp_path / "raw") == _hashes(out)


def test_a_file_that_crashes_the_decoder_is_reported(messy, tmp_path, monkeypatch, capfd):
    """A segfault inside libsndfile kills a worker process, not the stage."""
    root, good = messy
    victim = "yes/take04_22050_pcm_24.wav"
    real = folder.file_clips

    def crashing(path, dataset):
        if path.as_posix().endswith(victim):
            faulthandler.disable()   # pytest's would print the worker's stack to the terminal
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(path, dataset)

    monkeypatch.setattr(folder, "file_clips", crashing)
    summary = folder.fetch(dataset_for(root), 0, tmp_path / "raw", progress=False)
    assert dict(summary.skipped)[victim] == "crashed the decoder: the file is probably corrupt"
    assert summary.clips == len(good) - 1
    assert len(read_manifest(tmp_path / "raw" / "manifest.csv")) == len(good) - 1
    err = capfd.readouterr().err
    assert "a worker died" in err and f"fetch: skipped {victim}: crashed the decoder" in err


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 96000, 192000])
def test_windows_equal_resampling_the_whole_file(tmp_path, rate):
    """Reading only a window's samples gives what resampling everything and cutting gives."""
    x = np.random.default_rng(rate).uniform(-0.5, 0.5, (round(rate * 3.4), 2))
    soundfile.write(str(tmp_path / "x.wav"), x, rate, subtype="FLOAT")
    dataset = dataset_for(tmp_path, long_clips="windows")
    _, clips = folder.file_clips(tmp_path / "x.wav", dataset)
    whole = audio.resample(x.astype(np.float32).mean(axis=1), rate, 16000)
    first = (len(whole) - 3 * 16000) // 2
    assert len(clips) == 3
    for i, clip in enumerate(clips):
        assert np.array_equal(clip, audio.to_int16(whole[first + i * 16000:first + (i + 1) * 16000]))


def test_length_policies(tmp_path):
    soundfile.write(str(tmp_path / "long.wav"), tone(16000, 3.5, 1, 440.0), 16000)
    soundfile.write(str(tmp_path / "short.wav"), np.full(4000, 0.5), 16000)
    ds = dataset_for(tmp_path)
    assert len(folder.file_clips(tmp_path / "long.wav", ds)[1]) == 1
    assert len(folder.file_clips(tmp_path / "long.wav", dataclasses.replace(ds, long_clips="windows"))[1]) == 3
    assert len(folder.file_clips(tmp_path / "long.wav", dataclasses.replace(
        ds, long_clips="windows", max_windows=2))[1]) == 2
    end = folder.file_clips(tmp_path / "short.wav", ds)[1][0]
    centre = folder.file_clips(tmp_path / "short.wav", dataclasses.replace(ds, pad="centre"))[1][0]
    assert np.flatnonzero(end).tolist() == list(range(4000))
    assert np.flatnonzero(centre).tolist() == list(range(6000, 10000))
    with pytest.raises(folder.FileError, match=r"0.250 s, shorter than dataset.min_seconds \(0.5 s\)"):
        folder.file_clips(tmp_path / "short.wav", dataclasses.replace(ds, min_seconds=0.5))


def test_windows_of_a_long_file_share_its_split(smoke_params, tmp_path):
    root = tmp_path / "audio"
    for label in ("a", "b"):
        for i in range(12):
            write_audio(root / label / f"{i}.wav", tone(16000, 2.2, 1, 300.0), 16000, "PCM_16", "WAV")
    out = tmp_path / "raw"
    folder.fetch(dataset_for(root, keywords=(), long_clips="windows"),
                 smoke_params.seed, out, progress=False)
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 48
    by_file: dict[str, set] = {}
    for r in rows:
        by_file.setdefault(r.path.split("+")[0], set()).add(r.split)
    assert len(by_file) == 24 and all(len(s) == 1 for s in by_file.values())
    assert json.loads((out / "labels.json").read_text()) == ["a", "b"]


def test_hash_split_is_stable_and_follows_the_speaker():
    fractions = {"val": 0.1, "test": 0.1}
    names = [f"yes/speaker{i}_nohash_0.wav" for i in range(2000)]
    splits = [folder.hash_split(n, fractions) for n in names]
    assert abs(splits.count("test") / 2000 - 0.1) < 0.03 and abs(splits.count("val") / 2000 - 0.1) < 0.03
    # the same name always lands in the same split: adding files moves none
    assert splits == [folder.hash_split(n, fractions) for n in names]
    speaker_re = re.compile(r"^([^_]+)_nohash_")
    assert folder._speaker("yes/ab12_nohash_0.wav", speaker_re) == "ab12"
    assert folder._speaker("no/ab12_nohash_3.wav", speaker_re) == "ab12"
    assert folder._speaker("no/odd-name.wav", speaker_re) == "no/odd-name.wav"


def test_split_csv_names_splits_and_labels(messy, smoke_params, tmp_path):
    root = tmp_path / "audio"
    for label in ("yes", "no"):
        for i in range(3):
            write_audio(root / label / f"{i}.wav", tone(16000, 1.0, 1, 440.0), 16000, "PCM_16", "WAV")
    (root / "splits.csv").write_text(
        "path,fold,split,label\n"                 # an extra column is ignored
        "yes/0.wav,1,train,\n"
        "yes/1.wav,2,val,\n"
        "yes/2.wav,3,test,\n"
        "no/0.wav,1,train,\n"
        "no/1.wav,1,val,yes\n"                    # relabelled by the CSV
        "no/9.wav,1,test,\n")                     # listed, but no such file
    out = tmp_path / "raw"
    summary = folder.fetch(dataset_for(root, split_csv="splits.csv"),
                           smoke_params.seed, out, progress=False)
    rows = {r.path: (r.label, r.split) for r in read_manifest(out / "manifest.csv")}
    assert rows == {"clips/yes/0.wav": ("yes", "train"), "clips/yes/1.wav": ("yes", "val"),
                    "clips/yes/2.wav": ("yes", "test"), "clips/no/0.wav": ("no", "train"),
                    "clips/yes/no__1.wav": ("yes", "val")}
    assert dict(summary.skipped) == {"no/2.wav": "not listed in splits.csv",
                                     "no/9.wav": "listed in splits.csv line 7, but no such file"}


@pytest.mark.parametrize("csv_text, message", [
    ("file,split\nyes/0.wav,train\n", r"splits.csv:1: no column path"),
    ("path,split\nyes/0.wav,training\n", r"splits.csv:2: split 'training' is not one of train, val, test"),
    ("path,split\nyes/0.wav,train\nyes/0.wav,test\n", r"splits.csv:3: yes/0.wav already listed on line 2"),
    ("path,split\n../x.wav,train\n", r"splits.csv:2: path '../x.wav' must be relative"),
])
def test_bad_split_csv_names_the_line(smoke_params, tmp_path, csv_text, message):
    root = tmp_path / "audio"
    write_audio(root / "yes" / "0.wav", tone(16000, 1.0, 1, 440.0), 16000, "PCM_16", "WAV")
    (root / "splits.csv").write_text(csv_text)
    with pytest.raises(folder.FolderError, match=message):
        folder.fetch(dataset_for(root, split_csv="splits.csv"), 0, tmp_path / "raw",
                     progress=False)
    assert not (tmp_path / "raw").exists()


def test_unusable_folders_are_clear_errors(messy, smoke_params, tmp_path):
    root, _ = messy
    with pytest.raises(ParamsError, match=r"dataset.root: .*nowhere is not a folder"):
        folder.fetch(dataset_for(tmp_path / "nowhere"), 0, tmp_path / "raw")
    with pytest.raises(folder.FolderError, match=r"no train clips for left"):
        folder.fetch(dataset_for(root, keywords=("yes", "left")), 0,
                     tmp_path / "raw", progress=False)
    with pytest.raises(folder.FolderError, match=r"no val clips .*dataset.split_csv"):
        folder.fetch(dataset_for(root, split_fractions={"val": 0.0, "test": 0.2}), 0,
                     tmp_path / "raw", progress=False)
    with pytest.raises(ParamsError, match=r"dataset.split_csv: .*missing.csv not found"):
        folder.fetch(dataset_for(root, split_csv="missing.csv"), 0, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("overrides, message", [
    (["dataset=folder"], r"dataset.root: empty"),
    (["dataset=folder", "dataset.root=x", "dataset.long_clips=all"], r"dataset.long_clips: 'all' is not one of"),
    (["dataset=folder", "dataset.root=x", "dataset.speaker_regex='(oops'"], r"dataset.speaker_regex: .* is not a regular"),
    (["dataset=folder", "dataset.root=x", "dataset.split_fractions.val=0.9"], r"together below 1"),
    (["dataset=s3", "dataset.url=https://bucket/x"], r"dataset.url: 'https://bucket/x' is not s3://bucket"),
    (["dataset=s3", "dataset.url=s3://bucket/x", "+dataset.root=y"], r"unknown key\(s\) dataset.root"),
])
def test_params_of_the_folder_and_s3_sources(repo, overrides, message):
    with pytest.raises(ParamsError, match=message):
        from_dict(compose(repo / "conf", overrides))


def test_folder_params_compose_with_every_folder_as_a_class(repo):
    params = from_dict(compose(repo / "conf", ["dataset=folder", "dataset.root=/data/audio"]))
    assert isinstance(params.dataset, FolderDataset) and params.dataset.keywords == ()
    s3_params = from_dict(compose(repo / "conf", ["dataset=s3", "dataset.url=s3://bucket/kws"]))
    assert s3_params.dataset.cache_dir == "~/.cache/keyspot"


def _stage(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py")], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_stage_converts_the_folder_and_reports(messy, smoke_dict, tmp_path):
    root, good = messy
    data = copy.deepcopy(smoke_dict)
    data["dataset"] = {**dataclasses.asdict(dataset_for(root)), "keywords": ["yes", "no"],
                       "split_fractions": {"val": 0.25, "test": 0.25}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    result = _stage(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"fetch: {len(good)} clips")
    assert "Traceback" not in result.stderr
    for path in BAD:
        assert f"fetch: skipped {path}: " in result.stderr
    report_data = json.loads((tmp_path / "reports" / "data.json").read_text())
    assert {s["path"] for s in report_data["skipped"]} == {*BAD, ".git/"}
    assert (tmp_path / "reports" / "data" / "clips.csv").is_file()


def test_a_silence_class_can_be_generated(messy, fetched, smoke_params, tmp_path):
    """dataset.silence_clips adds _silence_ (every kind of quiet) to a folder
    without one; the files' clips stay the same bytes."""
    root, _ = messy
    _, plain, _ = fetched
    out = tmp_path / "raw"
    summary = folder.fetch(dataset_for(root, silence_clips=18), smoke_params.seed, out, progress=False)
    labels = json.loads((out / "labels.json").read_text())
    assert labels == ["_silence_", *json.loads((plain / "labels.json").read_text())]
    rows = [r for r in read_manifest(out / "manifest.csv") if r.label == "_silence_"]
    assert len(rows) == 18 and {r.split for r in rows} == set(SPLITS)
    assert {r.details.partition("=")[2] for r in rows} == set(folder.quiet.KINDS)
    assert sum(summary.counts[s]["_silence_"] for s in SPLITS) == 18
    assert {p: h for p, h in _hashes(out).items() if p.startswith("clips/") and "_silence_" not in p} == \
        {p: h for p, h in _hashes(plain).items() if p.startswith("clips/")}
    again = tmp_path / "again"
    folder.fetch(dataset_for(root, silence_clips=18), smoke_params.seed, again, progress=False)
    assert _hashes(again) == _hashes(out)


def test_a_folder_reads_no_sentences_and_the_old_ones_go(smoke_params, tmp_path):
    """The fetch stage's data/sentences for a source without sentences: a
    sentences.csv of its header alone, replacing what a synthetic dataset
    left there, so the streams hold the folder's words alone."""
    from keyspot.data import sources
    from keyspot.data.sentences import SENTENCE_HEADER, read_sentences

    out = tmp_path / "sentences"
    (out / "test").mkdir(parents=True)
    (out / "test" / "old.wav").write_bytes(b"left by another dataset")
    (out / "sentences.csv").write_text(",".join(SENTENCE_HEADER) + "\ntest/old.wav,test,a,Hello.,\n")
    assert sources.fetch_sentences(dataset_for(tmp_path / "audio"), smoke_params.seed, out) == 0
    assert [p.name for p in out.iterdir()] == ["sentences.csv"]
    assert (out / "sentences.csv").read_text() == ",".join(SENTENCE_HEADER) + "\n"
    assert read_sentences(out) == []
