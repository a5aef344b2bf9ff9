"""`keyspot errors`: the worst mistakes of a predictions file, listed, copied, refused when unreadable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keyspot import mistakes

REPO = Path(__file__).resolve().parents[1]
HEADER = "path,speaker,actual,predicted,probability,int8_predicted,int8_probability\n"
ROWS = [
    "clips/left/a.wav,espeak-en,left,right,0.61,right,0.65",
    "clips/left/b.wav,flite-kal,left,left,0.90,_unknown_,0.52",
    "clips/go/c.wav,espeak-en,go,no,0.97,no,0.96",
    "clips/up/d.wav,flite-slt,up,up,0.99,up,0.99",
    "clips/up/e.wav,flite-slt,up,down,0.61,up,0.70",
]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "reports/eval").mkdir(parents=True)
    (tmp_path / "reports/eval/predictions.csv").write_text(HEADER + "\n".join(ROWS) + "\n")
    for row in ROWS:
        clip = tmp_path / "data/raw" / row.split(",")[0]
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(b"RIFF" + row.encode())
    return tmp_path


def test_worst_mistakes_come_most_confident_first(workdir):
    path = workdir / "reports/eval/predictions.csv"
    assert [(m.path, m.predicted) for m in mistakes.worst(path)] == [
        ("clips/go/c.wav", "no"), ("clips/left/a.wav", "right"), ("clips/up/e.wav", "down")]
    assert [(m.path, m.predicted) for m in mistakes.worst(path, int8=True)] == [
        ("clips/go/c.wav", "no"), ("clips/left/a.wav", "right"), ("clips/left/b.wav", "_unknown_")]
    assert [m.path for m in mistakes.worst(path, int8=True, label="left")] == ["clips/left/a.wav",
                                                                                 "clips/left/b.wav"]


def _keyspot(*args, cwd):
    return subprocess.run([sys.executable, "-m", "keyspot.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def test_the_command_lists_and_copies_them(workdir, tmp_path):
    listed = _keyspot("errors", "--int8", "--top", "2", "--json", "--copy", str(tmp_path / "heard"), cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert [m["path"] for m in json.loads(listed.stdout)] == ["clips/go/c.wav", "clips/left/a.wav"]
    copies = sorted(p.name for p in (tmp_path / "heard").iterdir())
    assert copies == ["001_go_as_no_c.wav", "002_left_as_right_a.wav"]
    assert (tmp_path / "heard" / copies[0]).read_bytes() == (workdir / "data/raw/clips/go/c.wav").read_bytes()
    text = _keyspot("errors", cwd=workdir)
    assert text.returncode == 0 and re.search(r"\bgo as no +0\.970 +espeak-en +data/raw/clips/go/c\.wav", text.stdout)


@pytest.mark.parametrize(("content", "message"), [
    (None, "predictions.csv: missing; run `dvc repro evaluate`"),
    ("actual,predicted\nyes,no\n", "no column path, speaker, probability"),
    (HEADER + "a.wav,s,yes,no,high,no,0.5\n", "predictions.csv:2: probability 'high' is not a number"),
])
def test_unreadable_predictions_are_one_line(workdir, content, message):
    path = workdir / "reports/eval/predictions.csv"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    result = _keyspot("errors", cwd=workdir)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_missing_clip_is_named(workdir, tmp_path):
    (workdir / "data/raw/clips/go/c.wav").unlink()
    result = _keyspot("errors", "--copy", str(tmp_path / "heard"), cwd=workdir)
    assert result.returncode == 2 and "clips/go/c.wav: missing; run `dvc pull`" in result.stderr
