"""The speech_commands source, end to end against a miniature archive served on loopback.

The miniature has the real layout: word folders of `<speaker>_nohash_<n>.wav`,
validation_list.txt, testing_list.txt, _background_noise_/, and a test-set
archive with the ten-word/_silence_/_unknown_ folders. Clips are 0.25 s
(so padding is exercised), noise is 8 kHz (so resampling is).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml
from loopback_http import LoopbackServer

from keyspot.compose import compose
from keyspot.data import archive, download, speech_commands
from keyspot.data.manifest import read_manifest
from keyspot.params import ParamsError, from_dict

REPO = Path(__file__).resolve().parents[1]
TRAIN_SPEAKERS = ("0a1b2c3d", "1b2c3d4e", "2c3d4e5f", "3d4e5f60")
VAL_SPEAKER, TEST_SPEAKER = "4e5f6071", "5f607182"
WORDS = ("yes", "no", "up", "bed", "cat")
CORRUPT = "yes/deadbeef_nohash_0.wav"


def wav(seconds: float = 0.25, rate: int = 16000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = (0.3 * np.sin(np.arange(int(rate * seconds)) * rng.uniform(0.05, 0.3))).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, x, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main_archive() -> bytes:
    files: dict[str, bytes] = {"LICENSE": b"CC BY 4.0\n", "README.md": b"# Speech Commands\n"}
    speakers = (*TRAIN_SPEAKERS, VAL_SPEAKER, TEST_SPEAKER)
    for w, word in enumerate(WORDS):
        for s, speaker in enumerate(speakers):
            files[f"{word}/{speaker}_nohash_0.wav"] = wav(seed=10 * w + s)
    files[f"yes/{TRAIN_SPEAKERS[0]}_nohash_1.wav"] = wav(seed=99)
    files[CORRUPT] = b"RIFF\x10\x00\x00\x00WAVEgarbage"
    rng = np.random.default_rng(1)
    for name in ("white_noise", "pink_noise"):
        noise = io.BytesIO()
        soundfile.write(noise, (0.1 * rng.standard_normal(8000 * 12)).astype(np.float32), 8000,
                        subtype="PCM_16", format="WAV")
        files[f"_background_noise_/{name}.wav"] = noise.getvalue()
    files["_background_noise_/README.md"] = b"noise\n"
    files["validation_list.txt"] = "".join(f"{w}/{VAL_SPEAKER}_nohash_0.wav\n" for w in WORDS).encode()
    files["testing_list.txt"] = "".join(f"{w}/{TEST_SPEAKER}_nohash_0.wav\n" for w in WORDS).encode()
    return tar_gz(files)


def test_archive() -> bytes:
    return tar_gz({f"{folder}/9a9b9c9{i}_nohash_0.wav": wav(seed=200 + i)
                   for folder in ("yes", "no", "up", "_silence_", "_unknown_") for i in range(2)})


test_archive.__test__ = False   # a builder, not a test


MAIN, TEST = main_archive(), test_archive()
SHA = {"speech_commands_v0.02.tar.gz": hashlib.sha256(MAIN).hexdigest(),
       "speech_commands_test_set_v0.02.tar.gz": hashlib.sha256(TEST).hexdigest()}


@pytest.fixture
def server():
    files = {"/data/speech_commands_v0.02.tar.gz": MAIN, "/data/speech_commands_test_set_v0.02.tar.gz": TEST,
             "/data/speech_commands_v0.01.tar.gz": MAIN, "/data/speech_commands_test_set_v0.01.tar.gz": TEST}
    with LoopbackServer(files) as s:
        yield s


@pytest.fixture(scope="module")
def composed() -> dict:
    return compose(REPO / "conf", ["dataset=speech_commands"])


@pytest.fixture(autouse=True)
def no_cache_env(monkeypatch):
    monkeypatch.delenv(speech_commands.CACHE_ENV, raising=False)


def dataset(composed, server, tmp_path, **changes):
    """The committed config, pointed at the loopback server and a cache in tmp_path."""
    values = dict(keywords=("yes", "no"), silence_percentage=50.0, unknown_percentage=50.0,
                  base_url=f"{server.url}/data/", cache_dir=str(tmp_path / "cache"), sha256=dict(SHA),
                  workers=1)
    values.update(changes)
    return dataclasses.replace(from_dict(composed).dataset, **values)


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_configs_validate_with_mlperf_tiny_defaults(repo):
    twelve = from_dict(compose(repo / "conf", ["dataset=speech_commands"])).dataset
    assert (twelve.version, twelve.sample_rate, twelve.clip_seconds, twelve.test_archive) == \
        ("v0.02", 16000, 1.0, True)
    assert twelve.keywords == speech_commands.COMMANDS
    assert speech_commands.labels(twelve) == ["_silence_", "_unknown_", *speech_commands.COMMANDS]
    all35 = from_dict(compose(repo / "conf", ["dataset=speech_commands_35"])).dataset
    assert sorted(all35.keywords) == sorted(speech_commands.WORDS["v0.02"])
    assert speech_commands.labels(all35) == list(all35.keywords) and not all35.test_archive
    for ds in (twelve, all35):
        speech_commands.check(ds, Path("data/raw"))


def test_twelve_class_setup_from_the_archives(composed, server, tmp_path):
    out = tmp_path / "raw"
    summary = speech_commands.fetch(dataset(composed, server, tmp_path), 42, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["clips", "labels.json", "manifest.csv", "test_set"]
    assert json.loads((out / "labels.json").read_text()) == ["_silence_", "_unknown_", "yes", "no"]
    rows = read_manifest(out / "manifest.csv")
    assert {r.path for r in rows} == {p.relative_to(out).as_posix() for p in out.rglob("*.wav")}

    # train: 6 planned yes (one corrupt) and 4 no; val: 1 + 1. _silence_ and
    # _unknown_ are ceil(50 %) of the planned keyword clips of their split.
    assert summary.counts == {
        "train": {"_silence_": 5, "_unknown_": 5, "yes": 5, "no": 4},
        "val": {"_silence_": 1, "_unknown_": 1, "yes": 1, "no": 1},
        "test": {"_silence_": 2, "_unknown_": 4, "yes": 2, "no": 2},   # the test archive: up -> _unknown_
    }
    assert summary.clips == len(rows) == 33
    by_split = {s: [r for r in rows if r.split == s] for s in ("train", "val", "test")}
    assert {r.speaker for r in by_split["val"] if r.label not in ("_silence_",)} == {VAL_SPEAKER}
    assert all(r.path.startswith("test_set/") for r in by_split["test"])
    assert not any(TEST_SPEAKER in r.path for r in rows)   # testing_list.txt is left out
    assert {r.path.split("/")[1] for r in rows if r.label == "_unknown_" and r.split != "test"} \
        <= {"up", "bed", "cat"}
    assert all(r.path.startswith("clips/_silence_/") and r.speaker.startswith("_background_noise_/")
               for r in rows if r.label == "_silence_" and r.split != "test")

    assert summary.skipped == [(f"speech_commands_v0.02/{CORRUPT}", summary.skipped[0][1])]
    assert "not readable audio" in summary.skipped[0][1]
    assert "1 skipped" in summary.line() and CORRUPT in summary.table()
    assert summary.line().startswith("fetch: 33 clips (19 train, 4 val, 10 test)")
    # Every recording used, once: 27 clips (the 6 _silence_ clips are cut
    # from the 2 noise recordings, listed themselves).
    sources = {f.path: f for f in summary.sources}
    assert len(summary.sources) == len(sources) == 27 + 2
    noise = sources["speech_commands_v0.02/_background_noise_/white_noise.wav"]
    assert (noise.seconds, noise.sample_rate, noise.channels, noise.format) == (12.0, 8000, 1, "WAV PCM_16")
    assert sources[f"speech_commands_v0.02/yes/{VAL_SPEAKER}_nohash_0.wav"].seconds == 0.25
    assert sum(p.startswith("speech_commands_test_set_v0.02/") for p in sources) == 10
    for path in out.rglob("*.wav"):
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")


def test_the_cache_is_reused_and_the_bytes_do_not_depend_on_workers(composed, server, tmp_path):
    ds = dataset(composed, server, tmp_path)
    speech_commands.fetch(ds, 42, tmp_path / "one", progress=False)
    asked = len(server.requests)
    assert asked == 2
    speech_commands.fetch(dataclasses.replace(ds, workers=2), 42, tmp_path / "two", progress=False)
    assert len(server.requests) == asked
    assert _hashes(tmp_path / "one") == _hashes(tmp_path / "two")
    speech_commands.fetch(ds, 7, tmp_path / "three", progress=False)
    silence = [p for p in _hashes(tmp_path / "one") if p.startswith("clips/_silence_/")]
    assert [_hashes(tmp_path / "one")[p] for p in silence] != [_hashes(tmp_path / "three")[p] for p in silence]


def test_cache_env_variable_wins_over_the_config(composed, server, tmp_path, monkeypatch):
    monkeypatch.setenv(speech_commands.CACHE_ENV, str(tmp_path / "elsewhere"))
    speech_commands.fetch(dataset(composed, server, tmp_path), 42, tmp_path / "raw", progress=False)
    assert (tmp_path / "elsewhere" / "speech_commands" / "speech_commands_v0.02.tar.gz").is_file()
    assert not (tmp_path / "cache").exists()


def test_thirty_five_class_setup_uses_the_testing_list(composed, server, tmp_path):
    ds = dataset(composed, server, tmp_path, keywords=WORDS, silence_percentage=0.0,
                 unknown_percentage=0.0, test_archive=False)
    summary = speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)
    assert json.loads((tmp_path / "raw" / "labels.json").read_text()) == list(WORDS)
    rows = read_manifest(tmp_path / "raw" / "manifest.csv")
    assert {r.speaker for r in rows if r.split == "test"} == {TEST_SPEAKER}
    assert {r.speaker for r in rows if r.split == "val"} == {VAL_SPEAKER}
    assert sum(summary.counts["train"].values()) == 4 * 5 + 1   # + yes_1, - the corrupt clip
    assert [path for path, _ in server.requests] == ["/data/speech_commands_v0.02.tar.gz"]


def test_twelve_classes_without_the_test_archive_draw_test_from_the_list(composed, server, tmp_path):
    ds = dataset(composed, server, tmp_path, test_archive=False)
    summary = speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)
    assert summary.counts["test"] == {"_silence_": 1, "_unknown_": 1, "yes": 1, "no": 1}


def test_version_picks_the_archive_names(composed, server, tmp_path):
    sha = {"speech_commands_v0.01.tar.gz": SHA["speech_commands_v0.02.tar.gz"],
           "speech_commands_test_set_v0.01.tar.gz": SHA["speech_commands_test_set_v0.02.tar.gz"]}
    speech_commands.fetch(dataset(composed, server, tmp_path, version="v0.01", sha256=sha), 42,
                          tmp_path / "raw", progress=False)
    assert [p for p, _ in server.requests] == ["/data/speech_commands_v0.01.tar.gz",
                                              "/data/speech_commands_test_set_v0.01.tar.gz"]


def test_the_pinned_checksums_refuse_other_bytes(composed, server, tmp_path):
    ds = dataset(composed, server, tmp_path, sha256={})
    with pytest.raises(download.ChecksumError) as err:
        speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)
    message = str(err.value)
    assert f"{server.url}/data/speech_commands_v0.02.tar.gz" in message
    assert speech_commands.ARCHIVES["v0.02"][0].sha256 in message and "dataset.sha256" in message
    assert not (tmp_path / "raw").exists()
    assert sorted(p.name for p in (tmp_path / "cache" / "speech_commands").iterdir()) == [".lock"]


def test_a_cut_download_resumes_and_the_archive_verifies(composed, server, tmp_path):
    server.cut_once.add("/data/speech_commands_v0.02.tar.gz")
    speech_commands.fetch(dataset(composed, server, tmp_path), 42, tmp_path / "raw", progress=False)
    main = [rng for path, rng in server.requests if path == "/data/speech_commands_v0.02.tar.gz"]
    assert main == [None, f"bytes={len(MAIN) // 2}-"]
    cached = tmp_path / "cache" / "speech_commands" / "speech_commands_v0.02.tar.gz"
    assert cached.read_bytes() == MAIN


@pytest.mark.parametrize("hostile", [("file", "../escaped.txt"), ("symlink", "../../escaped.txt")])
def test_a_hostile_archive_is_refused_and_writes_nothing_outside(composed, server, tmp_path, hostile):
    kind, name = hostile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar, tarfile.open(fileobj=io.BytesIO(MAIN)) as good:
        for member in good:
            tar.addfile(member, good.extractfile(member))
        info = tarfile.TarInfo(name if kind == "file" else "./yes/link")
        if kind == "file":
            info.size = 5
            tar.addfile(info, io.BytesIO(b"owned"))
        else:
            info.type, info.linkname = tarfile.SYMTYPE, name
            tar.addfile(info)
    server.files["/data/speech_commands_v0.02.tar.gz"] = bad = buffer.getvalue()
    ds = dataset(composed, server, tmp_path,
                 sha256={**SHA, "speech_commands_v0.02.tar.gz": hashlib.sha256(bad).hexdigest()})
    with pytest.raises(archive.UnsafeArchiveError, match="outside the target|climbs out"):
        speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)
    cache = tmp_path / "cache" / "speech_commands"
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "speech_commands_v0.02.tar.gz"]
    assert not list(tmp_path.rglob("escaped.txt")) and not (tmp_path / "raw").exists()


@pytest.mark.parametrize("changes, message", [
    (dict(keywords=("yes", "learn"), version="v0.01"), r"dataset\.keywords\[1\]: 'learn' is not a word"),
    (dict(keywords=("yes", "bed")), r"dataset\.test_archive: .* bed would have no test clips"),
    (dict(keywords=WORDS + ("zero",), test_archive=False, unknown_percentage=0.0, silence_percentage=0.0),
     None),
    (dict(keywords=speech_commands.WORDS["v0.02"], test_archive=False), r"dataset\.unknown_percentage"),
    (dict(base_url="ftp://example.com/"), r"dataset\.base_url"),
    (dict(sha256={"other.tar.gz": "0" * 64}), r"dataset\.sha256: 'other\.tar\.gz'"),
])
def test_bad_config_is_refused_before_any_download(composed, server, tmp_path, changes, message):
    ds = dataset(composed, server, tmp_path, **changes)
    if message is None:   # valid: a keyword with no folder in the miniature is an archive problem
        with pytest.raises(speech_commands.DatasetError, match="no folder for keyword"):
            speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)
        return
    with pytest.raises(ParamsError, match=message):
        speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)
    assert server.requests == []


def test_cache_inside_the_output_is_refused(composed, server, tmp_path):
    ds = dataset(composed, server, tmp_path, cache_dir=str(tmp_path / "raw" / "cache"))
    with pytest.raises(ParamsError, match="dataset.cache_dir: .* inside"):
        speech_commands.fetch(ds, 42, tmp_path / "raw", progress=False)


@pytest.mark.parametrize("path, value, message", [
    ("version", "v3", "dataset.version: 'v3' is not one of"),
    ("silence_percentage", -1, r"dataset.silence_percentage: -1.0 is not allowed; it must be >= 0 and <= 100"),
    ("sha256", {"speech_commands_v0.02.tar.gz": "abc"}, "is not a SHA-256"),
    ("voices", ["espeak:en"], r"unknown key\(s\) dataset.voices"),
])
def test_params_name_the_bad_key(composed, path, value, message):
    data = copy.deepcopy(composed)
    data["dataset"][path] = value
    with pytest.raises(ParamsError, match=message):
        from_dict(data)


def _stage(cwd: Path, composed: dict, **dataset_changes) -> subprocess.CompletedProcess:
    data = copy.deepcopy(composed)
    data["dataset"].update(dataset_changes)
    (cwd / "params.yaml").write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k != speech_commands.CACHE_ENV}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_stage_fetches_from_the_configured_server(composed, server, tmp_path):
    result = _stage(tmp_path, composed, keywords=["yes", "no"], silence_percentage=50.0,
                    unknown_percentage=50.0, base_url=f"{server.url}/data", sha256=SHA,
                    cache_dir=str(tmp_path / "cache"), workers=2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fetch: 33 clips (19 train, 4 val, 10 test) from Speech Commands v0.02")
    assert f"skipped speech_commands_v0.02/{CORRUPT}" in result.stdout
    assert len(read_manifest(tmp_path / "data" / "raw" / "manifest.csv")) == 33


def test_stage_reports_a_checksum_mismatch_in_one_line(composed, server, tmp_path):
    result = _stage(tmp_path, composed, base_url=f"{server.url}/data", cache_dir=str(tmp_path / "cache"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fetch: error: ") and "speech_commands_v0.02.tar.gz: SHA-256" in last
    assert not (tmp_path / "data").exists()
