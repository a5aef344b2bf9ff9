"""The s3 source against moto's S3 server on loopback: mirror, cache by ETag, convert like a folder."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from keyspot.data import folder, s3
from keyspot.data.folder import FolderDataset
from keyspot.data.manifest import read_manifest
from keyspot.data.s3 import S3Dataset

BUCKET = "kws-audio"


@pytest.fixture
def aws(moto_server, tmp_path, monkeypatch):
    """AWS settings as a user gives them: environment only, no config files, fake keys."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    missing = str(tmp_path / "no-aws-config")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", missing)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv(s3.CACHE_ENV, str(tmp_path / "cache"))
    client = s3._client()
    bucket = f"{BUCKET}-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def wav(freq: float, rate: int = 16000, seconds: float = 1.0, subtype: str = "PCM_16",
        fmt: str = "WAV") -> bytes:
    t = np.arange(round(rate * seconds)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.5 * np.sin(2 * np.pi * freq * t), rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


def upload(client, bucket: str, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


FILES = {
    **{f"data/kws/yes/{i}.wav": wav(400 + 10 * i, rate=44100) for i in range(8)},
    **{f"data/kws/no/{i}.flac": wav(800 + 10 * i, rate=8000, subtype="PCM_24", fmt="FLAC")
       for i in range(8)},
    "data/kws/no/broken.wav": b"RIFF\x10\x00\x00\x00WAVEfmt ",
    "data/kws/.hidden/x.wav": wav(500),
    "data/other/yes/not-under-the-prefix.wav": wav(500),
}


def dataset_for(bucket: str, **changes) -> S3Dataset:
    values = dict(name="s3", url=f"s3://{bucket}/data/kws", cache_dir="", keywords=("yes", "no"),
                  other_folders="unknown", split_csv="", speaker_regex="",
                  split_fractions={"val": 0.25, "test": 0.25}, sample_rate=16000, clip_seconds=1.0,
                  min_seconds=0.0, pad="end", long_clips="centre", max_windows=0, workers=1)
    values.update(changes)
    return S3Dataset(**values)


def _clips(out: Path) -> dict[str, bytes]:
    return {r.path: (out / r.path).read_bytes() for r in read_manifest(out / "manifest.csv")}


def test_fetch_mirrors_then_converts_like_a_folder(aws, tmp_path):
    client, bucket = aws
    upload(client, bucket, FILES)
    dataset = dataset_for(bucket)
    summary = s3.fetch(dataset, 0, tmp_path / "raw", progress=False)
    assert summary.clips == 16 and "17 downloaded, 0 from the cache" in summary.line()
    skipped = dict(summary.skipped)
    assert set(skipped) == {".hidden/x.wav", "no/broken.wav"}
    assert skipped[".hidden/x.wav"] == "hidden file, not downloaded"
    assert skipped["no/broken.wav"].startswith("not readable audio (Error in WAV file")
    cache = tmp_path / "cache" / "s3" / bucket / "data" / "kws"
    assert s3.cache_folder(dataset) == cache
    assert (cache / "yes" / "0.wav").read_bytes() == FILES["data/kws/yes/0.wav"]
    # The same files as a local folder give the same data/raw, byte for byte.
    local = tmp_path / "local"
    for key, body in FILES.items():
        if key.startswith("data/kws/") and ".hidden" not in key:
            (local / key[len("data/kws/"):]).parent.mkdir(parents=True, exist_ok=True)
            (local / key[len("data/kws/"):]).write_bytes(body)
    values = {k: v for k, v in vars(dataset).items() if k not in ("url", "cache_dir")}
    folder.fetch(FolderDataset(**values, root=str(local)), 0, tmp_path / "raw-local", progress=False)
    assert _clips(tmp_path / "raw") == _clips(tmp_path / "raw-local")
    assert (tmp_path / "raw" / "manifest.csv").read_bytes() == \
        (tmp_path / "raw-local" / "manifest.csv").read_bytes()


def test_only_changed_objects_are_downloaded_again(aws, tmp_path):
    client, bucket = aws
    upload(client, bucket, FILES)
    dataset = dataset_for(bucket)
    s3.fetch(dataset, 0, tmp_path / "raw", progress=False)
    cache = s3.cache_folder(dataset)
    before = {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns for p in cache.rglob("*.*")
              if p.name != s3.INDEX}
    first = _clips(tmp_path / "raw")

    upload(client, bucket, {"data/kws/yes/3.wav": wav(1234, rate=44100)})   # a new ETag
    client.delete_object(Bucket=bucket, Key="data/kws/no/7.flac")
    summary = s3.fetch(dataset, 0, tmp_path / "raw", progress=False)
    assert "(1 downloaded, 15 from the cache)" in summary.line()
    after = {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns for p in cache.rglob("*.*")
             if p.name != s3.INDEX}
    assert after["yes/3.wav"] != before["yes/3.wav"]
    assert "no/7.flac" not in after
    assert {k: v for k, v in after.items() if k != "yes/3.wav"} == \
        {k: v for k, v in before.items() if k not in ("yes/3.wav", "no/7.flac")}
    second = _clips(tmp_path / "raw")
    changed = {p for p in first if p in second and first[p] != second[p]}
    assert changed == {"clips/yes/3.wav"}
    assert set(first) - set(second) == {"clips/no/7.wav"}

    # A damaged copy in the cache is noticed by its size and fetched again.
    (cache / "yes" / "0.wav").write_bytes(b"oops")
    assert "(1 downloaded, " in s3.fetch(dataset, 0, tmp_path / "raw", progress=False).line()
    assert (cache / "yes" / "0.wav").read_bytes() == FILES["data/kws/yes/0.wav"]


def test_split_csv_under_the_prefix(aws, tmp_path):
    client, bucket = aws
    files = {f"data/kws/{label}/{i}.wav": wav(300 + i) for label in ("yes", "no") for i in range(3)}
    files["data/kws/splits.csv"] = ("path,split\n" + "".join(
        f"{label}/{i}.wav,{split}\n" for label in ("yes", "no")
        for i, split in enumerate(("train", "val", "test")))).encode()
    upload(client, bucket, files)
    s3.fetch(dataset_for(bucket, split_csv="splits.csv"), 0, tmp_path / "raw", progress=False)
    rows = {r.path: r.split for r in read_manifest(tmp_path / "raw" / "manifest.csv")}
    assert rows == {f"clips/{label}/{i}.wav": split for label in ("yes", "no")
                    for i, split in enumerate(("train", "val", "test"))}


def test_s3_problems_are_one_clear_error(aws, tmp_path, monkeypatch):
    client, bucket = aws
    with pytest.raises(s3.S3Error, match=r"s3://no-such-bucket/data/kws: NoSuchBucket: the bucket does not exist"):
        s3.fetch(dataset_for("no-such-bucket"), 0, tmp_path / "raw", progress=False)
    with pytest.raises(s3.S3Error, match=r"no objects under this prefix"):
        s3.fetch(dataset_for(bucket), 0, tmp_path / "raw", progress=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(s3.S3Error, match=r"no AWS credentials found; set AWS_PROFILE"):
        s3.fetch(dataset_for(bucket), 0, tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()


def test_cache_location(monkeypatch, tmp_path):
    dataset = dataset_for("bucket", url="s3://bucket/a/b/", cache_dir=str(tmp_path / "mine"))
    monkeypatch.delenv(s3.CACHE_ENV, raising=False)
    assert s3.cache_folder(dataset) == tmp_path / "mine" / "s3" / "bucket" / "a" / "b"
    monkeypatch.setenv(s3.CACHE_ENV, str(tmp_path / "env"))
    assert s3.cache_folder(dataset) == tmp_path / "env" / "s3" / "bucket" / "a" / "b"
    assert s3.parse_url("s3://bucket") == ("bucket", "")


def test_stage_reports_an_s3_problem_in_one_line(aws, smoke_dict, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    data = copy.deepcopy(smoke_dict)
    data["dataset"] = dataclasses.asdict(dataset_for("no-such-bucket"))
    data["dataset"]["keywords"] = list(data["dataset"]["keywords"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, str(repo / "stages" / "fetch.py")], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "fetch: error: s3://no-such-bucket/data/kws: NoSuchBucket: the bucket does not exist at this endpoint"]
    assert not (tmp_path / "data").exists()
