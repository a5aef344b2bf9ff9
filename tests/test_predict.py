"""`keyspot predict`: the int8 model without TensorFlow, with the board's
arithmetic; the float model without TensorFlow's start-up notes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_serve import LABELS, PITCHES, build_workdir, tone, wav_bytes

from keyspot import features

REPO = Path(__file__).resolve().parents[1]
# Runs `keyspot predict` as the command does, then says which heavy modules it imported.
PREDICT_AND_REPORT = ("import sys\nfrom keyspot.cli import main\nstatus = main(sys.argv[1:])\n"
                      "print('imported', ' '.join(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
                      "sys.exit(status)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from keyspot.quantize import convert

    work = build_workdir(tmp_path_factory.mktemp("predict"))
    root, spec = work["root"], work["spec"]
    clips = np.stack([tone(16000, 1.0, PITCHES[label], 70 + i) for i, label in enumerate(LABELS)])
    (root / "int8.tflite").write_bytes(convert(root / "models/saved_model", features.compute(clips, spec)[..., None]))
    work["model"].save(root / "model.keras")
    for label, pcm in zip(LABELS, clips, strict=True):
        (root / f"{label}.wav").write_bytes(wav_bytes(pcm, 16000))
    return work


def _predict(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PREDICT_AND_REPORT, "predict", "--json",
                           "--spec", str(root / "data/features/spec.json"), *args],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_int8_needs_no_tensorflow_and_matches_the_reference_kernels(workdir):
    from keyspot.tflite_runner import TFLiteRunner

    root, spec = workdir["root"], workdir["spec"]
    wavs = [str(root / f"{label}.wav") for label in LABELS]
    done = _predict(root, "--int8", "--model", str(root / "int8.tflite"), *wavs)
    assert done.returncode == 0, done.stderr
    answers, imported = done.stdout.rsplit("imported", 1)
    assert imported.split() == [], f"predict --int8 imported {imported.strip()}"
    assert done.stderr == ""
    predicted = json.loads(answers)
    assert [p["label"] for p in predicted] == list(LABELS)
    # TensorFlow's own interpreter with the same reference kernels: the same int8 outputs.
    reference = TFLiteRunner.reference((root / "int8.tflite").read_bytes())
    pcm = np.stack([np.frombuffer((root / f"{label}.wav").read_bytes()[44:], "<i2") for label in LABELS])
    expected = reference(features.compute(pcm, spec)[..., None])
    for row, probabilities in zip(predicted, expected, strict=True):
        assert [row["probabilities"][label] for label in spec.labels] == \
            [round(float(v), 4) for v in probabilities]


def test_the_float_model_keeps_stderr_for_what_matters(workdir, tmp_path):
    root = workdir["root"]
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples\n")
    done = _predict(root, "--model", str(root / "model.keras"), str(root / "yes.wav"), str(not_audio))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"keyspot predict: {not_audio}: not readable audio (Format not recognised.)"], \
        done.stderr
    assert json.loads(done.stdout.rsplit("imported", 1)[0])[0]["label"] == "yes"


def test_a_model_for_other_features_is_one_line(workdir, tmp_path):
    root = workdir["root"]
    other = json.loads((root / "data/features/spec.json").read_text())
    other["num_mfcc"] = 13
    (tmp_path / "spec.json").write_text(json.dumps(other))
    done = subprocess.run([sys.executable, "-m", "keyspot.cli", "predict", "--int8", "--model", str(root / "int8.tflite"),
                           "--spec", str(tmp_path / "spec.json"), str(root / "yes.wav")],
                          cwd=root, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "does not match the feature spec" in done.stderr
    assert "Traceback" not in done.stderr


def test_version():
    done = subprocess.run([sys.executable, "-m", "keyspot.cli", "--version"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    from importlib.metadata import version

    assert done.returncode == 0 and done.stdout == f"keyspot {version('keyspot')}\n"
