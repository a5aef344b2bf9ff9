"""reports/data.json and the plot tables: counts, durations, clipped and silent clips, skipped files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from keyspot.data import folder, report
from keyspot.data.folder import FolderDataset

REPO = Path(__file__).resolve().parents[1]


def dataset_for(root: Path) -> FolderDataset:
    return FolderDataset(name="folder", root=str(root), keywords=(), other_folders="unknown",
                         split_csv="", speaker_regex="", split_fractions={"val": 0.3, "test": 0.3},
                         sample_rate=16000, clip_seconds=1.0, min_seconds=0.0, pad="end",
                         long_clips="centre", max_windows=0, workers=1)


def tone(seconds: float, amplitude: float = 0.3, rate: int = 16000) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * 500 * np.arange(round(rate * seconds)) / rate)


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """A folder with a clipped recording, a silent one, normal ones and a broken file."""
    tmp = tmp_path_factory.mktemp("report")
    root = tmp / "audio"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            soundfile.write(str(root / label / f"{i}.wav"), tone(0.5 + 0.25 * i), 16000)
    soundfile.write(str(root / "dog" / "loud.wav"), tone(1.0, amplitude=3.0, rate=44100), 44100, subtype="FLOAT")
    soundfile.write(str(root / "cat" / "quiet.wav"), tone(2.0, amplitude=1e-4, rate=8000), 8000)
    (root / "cat" / "broken.flac").write_bytes(b"fLaC" + bytes(10))
    dataset = dataset_for(root)
    summary = folder.fetch(dataset, 0, tmp / "raw", progress=False)
    return summary, dataset, tmp


def test_flags_find_clipping_and_silence():
    full = np.full(100, 32767, np.int16)
    assert report.clip_flags(full) == (True, False)
    one_peak = np.zeros(100, np.int16)
    one_peak[[10, 50]] = [32767, -32768]     # isolated full-scale samples are not clipping
    assert report.clip_flags(one_peak) == (False, False)
    assert report.clip_flags(np.zeros(100, np.int16)) == (False, True)
    assert report.clip_flags((tone(0.1) * 32767).astype(np.int16)) == (False, False)
    assert report.clip_flags((tone(0.1, 1e-4) * 32767).astype(np.int16)) == (False, True)


def test_report_counts_flags_and_skips(fetched):
    summary, dataset, tmp = fetched
    data = report.write(summary, dataset, tmp / "raw", tmp / "reports/data.json", tmp / "reports/data")
    assert json.loads((tmp / "reports/data.json").read_text()) == data
    assert data["source"] == "folder" and data["labels"] == ["cat", "dog"]
    assert data["clips"]["total"] == 22 == sum(data["clips"][s] for s in ("train", "val", "test"))
    assert sum(data["clips_per_label"]["cat"].values()) == 11      # 10 tones and quiet, not broken
    assert data["clipped"] == {"clips": 1, "per_label": {"dog": 1}, "paths": ["clips/dog/loud.wav"]}
    assert data["silent"] == {"clips": 1, "per_label": {"cat": 1}, "paths": ["clips/cat/quiet.wav"]}
    assert data["skipped"] == [{"path": "cat/broken.flac",
                                "reason": dict(summary.skipped)["cat/broken.flac"]}]
    assert data["source_files"] == {"used": 22, "skipped": 1}
    assert data["sample_rates"] == {"16000": 20, "44100": 1, "8000": 1}
    assert data["formats"] == {"WAV FLOAT": 1, "WAV PCM_16": 21}
    durations = data["durations_s"]
    assert (durations["min"], durations["max"]) == (0.5, 2.75)
    assert durations["shorter_than_clip"] == 4 and durations["longer_than_clip"] == 15


def test_plot_tables(fetched):
    summary, dataset, tmp = fetched
    report.write(summary, dataset, tmp / "raw", tmp / "reports/data.json", tmp / "reports/data")
    clips = (tmp / "reports/data/clips.csv").read_text().splitlines()
    assert clips[0] == "split_label,split,label,clips" and len(clips) == 1 + 3 * 2
    assert sum(int(line.split(",")[-1]) for line in clips[1:]) == 22
    durations = (tmp / "reports/data/durations.csv").read_text().splitlines()
    # The plot orders the bins by their number, so their names carry none.
    assert durations == ["duration,files,order", "0.5-1 s,4,6", "1-2 s,9,7", "2-5 s,9,8"]


def test_same_bytes_every_time(fetched, tmp_path):
    summary, dataset, tmp = fetched
    for run in ("a", "b"):
        report.write(summary, dataset, tmp / "raw", tmp_path / run / "data.json", tmp_path / run / "data")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert set(files) == {Path("data.json"), Path("data/clips.csv"), Path("data/durations.csv")}
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_a_source_without_file_details(fetched, tmp_path):
    """A source that records only what it skipped still gets counts and flags."""
    _, dataset, tmp = fetched
    summary = types.SimpleNamespace(skipped=[("b.wav", "empty file"), ("a.wav", "not audio")])
    data = report.write(summary, dataset, tmp / "raw", tmp_path / "data.json", tmp_path / "data")
    assert data["durations_s"] is None and data["sample_rates"] == {}
    assert [s["path"] for s in data["skipped"]] == ["a.wav", "b.wav"]
    assert data["clipped"]["clips"] == 1
    assert (tmp_path / "data" / "durations.csv").read_text() == "duration,files,order\n"


def test_dvc_reads_the_report_and_the_declared_plots(fetched, tmp_path):
    """The plots dvc.yaml declares for the report render from these tables,
    with keyspot's templates; the report's counters are an output of their
    own, not headline metrics."""
    summary, dataset, tmp = fetched
    report.write(summary, dataset, tmp / "raw", tmp_path / "reports/data.json", tmp_path / "reports/data")
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert "reports/data.json" in declared["stages"]["fetch"]["outs"]
    assert all("reports/data.json" not in stage.get("metrics", []) for stage in declared["stages"].values())
    ours = [p for p in declared["plots"] if isinstance(p, dict)
            and any(str(f).startswith("reports/data/") for f in next(iter(p.values()))["y"])]
    assert len(ours) == 2
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"metrics": ["reports/data.json"], "plots": ours}))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    shutil.copytree(REPO / ".dvc/plots", tmp_path / ".dvc/plots")
    metrics = json.loads(subprocess.run([*dvc, "metrics", "show", "--json"], cwd=tmp_path, check=True,
                                        capture_output=True, text=True).stdout)
    assert metrics[""]["data"]["reports/data.json"]["data"]["clips"]["total"] == 22
    plots = json.loads(subprocess.run([*dvc, "plots", "show", "--json"], cwd=tmp_path, check=True,
                                      capture_output=True, text=True).stdout)["data"]
    for plot in ours:
        (title,) = plot
        values = plots[title][0]["content"]["data"]["values"]
        assert values and all(plot[title]["x"] in v for v in values)
