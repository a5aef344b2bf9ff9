"""The train stage: early stopping, the best epoch kept, and a killed run."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keyspot import train
from keyspot.compose import write_params

REPO = Path(__file__).resolve().parents[1]


def _params(smoke_params, **train_values):
    return dataclasses.replace(smoke_params, train=dataclasses.replace(smoke_params.train, **train_values))


def test_early_stopping_keeps_the_best_epoch(tiny_data, tmp_path, smoke_params, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = _params(smoke_params, epochs=40, patience=3, lr=0.01)
    summary = train.run(params, tiny_data / "features", tmp_path / "models", tmp_path / "reports",
                        raw_dir=tiny_data / "raw")
    assert summary["epochs_run"] < 40
    assert summary["epochs_run"] == summary["best_epoch"] + 3
    history = (tmp_path / "reports" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + summary["epochs_run"]
    header = history[0].split(",")
    val = [float(line.split(",")[header.index("val_accuracy")]) for line in history[1:]]
    assert max(val) == pytest.approx(summary["best_val_accuracy"], abs=1e-6)
    assert val.index(max(val)) + 1 == summary["best_epoch"]


def test_seed_offset_draws_another_training_on_the_same_data(tiny_data, smoke_params):
    from keyspot.features import FeatureSpec

    spec = FeatureSpec.load(tiny_data / "features" / "spec.json")

    def first_epoch(params):
        return train.EpochData(params, spec, tiny_data / "features", tiny_data / "raw").epoch(1)

    base = first_epoch(smoke_params)
    for a, b in zip(base, first_epoch(_params(smoke_params, seed_offset=0)), strict=True):
        np.testing.assert_array_equal(a, b)
    other = first_epoch(_params(smoke_params, seed_offset=1))
    assert sorted(other[1]) == sorted(base[1])            # the same clips...
    assert not np.array_equal(other[0], base[0])          # ...in another order, augmented anew
    assert train.training_seed(_params(smoke_params, seed_offset=3)) == smoke_params.seed + 3


def _workspace(tmp_path, data, smoke_dict, seed):
    ws = tmp_path / "ws"
    if not ws.exists():
        (ws / "data").mkdir(parents=True)
        shutil.copytree(data / "raw", ws / "data" / "raw")
        shutil.copytree(data / "features", ws / "data" / "features")
        shutil.copytree(REPO / "stages", ws / "stages")
    write_params({**smoke_dict, "seed": seed, "train": {**smoke_dict["train"], "epochs": 200, "patience": 0}},
                 ws / "params.yaml")
    return ws


def _outputs(ws):
    return {p.relative_to(ws).as_posix(): p.read_bytes() for p in sorted((ws / "models").rglob("*"))
            if p.is_file()} | {"summary": (ws / "reports" / "train" / "summary.json").read_bytes()}


def test_a_killed_training_leaves_the_previous_outputs(tiny_data, tmp_path, smoke_dict):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PYTHONUNBUFFERED": "1"}
    ws = _workspace(tmp_path, tiny_data, {**smoke_dict, "train": {**smoke_dict["train"], "epochs": 2}}, seed=1)
    write_params({**smoke_dict, "seed": 1}, ws / "params.yaml")
    subprocess.run([sys.executable, "stages/train.py"], cwd=ws, env=env, check=True, capture_output=True)
    before = _outputs(ws)

    _workspace(tmp_path, tiny_data, smoke_dict, seed=2)  # a long run with another seed
    proc = subprocess.Popen([sys.executable, "stages/train.py"], cwd=ws, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("epoch 3:") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _outputs(ws) == before
    assert not [p for p in ws.rglob(".*") if p.name.endswith((".tmp", ".old"))]

    write_params({**smoke_dict, "seed": 2}, ws / "params.yaml")
    done = subprocess.run([sys.executable, "stages/train.py"], cwd=ws, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _outputs(ws)
    assert after.keys() == before.keys() and after != before
    assert json.loads(after["summary"])["epochs_run"] == smoke_dict["train"]["epochs"]


# What two machines' CPUs would make the libraries choose, were keyspot not
# to pin them (keyspot/cpu.py): oneDNN's, OpenBLAS's and numpy's kernels.
MACHINES = {
    "sse4": {"ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Nehalem",
             "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": ""},
}


@pytest.mark.slow
def test_the_same_features_and_model_on_any_x86_64_instruction_set(tiny_data, tmp_path, smoke_dict):
    """The features stage and training, each in a process whose libraries
    would pick SSE4 kernels and in one whose would pick AVX2 ones, give the
    same bytes: keyspot.cpu pins oneDNN, OpenBLAS and numpy. Without the pins
    both differ (the frontend's matrix products round otherwise)."""
    outputs = {}
    for machine, settings in MACHINES.items():
        ws = _workspace(tmp_path / machine, tiny_data, {**smoke_dict, "train": {**smoke_dict["train"], "epochs": 2}},
                        seed=3)
        write_params({**smoke_dict, "seed": 3}, ws / "params.yaml")
        shutil.rmtree(ws / "data" / "features")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / machine / 'mlflow.db'}", **settings}
        for stage in ("features", "train"):
            done = subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=ws, env=env, capture_output=True,
                                  text=True)
            assert done.returncode == 0, done.stderr[-2000:]
        features = {p.name: p.read_bytes() for p in sorted((ws / "data" / "features").iterdir())}
        outputs[machine] = (features, _outputs(ws))
    assert outputs["sse4"][0] == outputs["avx2"][0], "the features differ"
    assert outputs["sse4"][1] == outputs["avx2"][1], "the models differ"


@pytest.mark.slow
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="emulates another x86-64 CPU on an x86-64 host")
def test_the_same_model_on_another_cpu(tiny_data, tmp_path, smoke_dict):
    """The train stage here and under QEMU's emulated x86-64 CPU (its own
    cache sizes, its own approximate reciprocal instructions, no AVX-512)
    gives the same bytes: keyspot.portable_ops. Without it the kernels'
    gradients, batch normalisation and the pool's gradient round otherwise
    there, and the models differ after one batch."""
    qemu = shutil.which("qemu-x86_64")
    assert qemu, "qemu-x86_64 is missing: run `make setup` (Debian's qemu-user)"
    outputs = {}
    for machine, prefix in {"here": [], "qemu": [qemu, "-cpu", "max"]}.items():
        ws = _workspace(tmp_path / machine, tiny_data, smoke_dict, seed=4)
        write_params({**smoke_dict, "seed": 4}, ws / "params.yaml")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / machine / 'mlflow.db'}"}
        done = subprocess.run([*prefix, sys.executable, "stages/train.py"], cwd=ws, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[machine] = _outputs(ws)
    assert outputs["here"] == outputs["qemu"], "the models differ"


def test_a_resumed_training_gives_the_same_model(tiny_data, tmp_path, smoke_params, monkeypatch):
    """Interrupted right after epoch 1's checkpoint, then restarted: the same
    bytes as a run that never stopped."""
    from keyspot import checkpoint

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = _params(smoke_params, epochs=3, patience=0)
    whole = train.run(params, tiny_data / "features", tmp_path / "whole", tmp_path / "whole_reports",
                      raw_dir=tiny_data / "raw")

    save = checkpoint.save

    def save_then_stop(folder, key, model, state):
        save(folder, key, model, state)
        if state.last_epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train.run(params, tiny_data / "features", tmp_path / "resumed", tmp_path / "resumed_reports",
                  raw_dir=tiny_data / "raw", checkpoint_dir=tmp_path / "ckpt")
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(checkpoint, "save", save)
    resumed = train.run(params, tiny_data / "features", tmp_path / "resumed", tmp_path / "resumed_reports",
                        raw_dir=tiny_data / "raw", checkpoint_dir=tmp_path / "ckpt")
    assert resumed == whole
    assert (tmp_path / "resumed" / "model.keras").read_bytes() == (tmp_path / "whole" / "model.keras").read_bytes()
    assert ((tmp_path / "resumed_reports" / "history.csv").read_text()
            == (tmp_path / "whole_reports" / "history.csv").read_text())

    # A checkpoint of other params is not used.
    other = _params(smoke_params, epochs=3, patience=0, lr=0.002)
    train.run(other, tiny_data / "features", tmp_path / "other", tmp_path / "other_reports",
              raw_dir=tiny_data / "raw", checkpoint_dir=tmp_path / "ckpt")
    assert len((tmp_path / "other_reports" / "history.csv").read_text().splitlines()) == 4


def test_class_weight_power_goes_from_unweighted_to_inverse_frequency():
    from keyspot.train import class_weights

    y = np.array([0] * 30 + [1] * 10 + [2] * 20)
    assert class_weights(y, 3, 0.0) == {0: 1.0, 1: 1.0, 2: 1.0}
    inverse = class_weights(y, 3, 1.0)
    assert inverse[1] == pytest.approx(2.0) and inverse[0] == pytest.approx(2 / 3)
    # Each class then carries the same total weight.
    assert 30 * inverse[0] == pytest.approx(10 * inverse[1]) == pytest.approx(20 * inverse[2])
    assert class_weights(y, 3, 0.5)[1] == pytest.approx(2.0 ** 0.5)


def test_engine_weights_count_clips_of_the_named_engines_more(tmp_path):
    from keyspot.data.manifest import Row, write_manifest
    from keyspot.train import engine_weights

    rows = [Row(f"clips/yes/{i}.wav", "yes", "train", speaker) for i, speaker in
            enumerate(["espeak-ng:f3", "kokoro:jm_kumo", "flite:slt", "kokoro:jf_alpha", "a1b2c3"])]
    write_manifest(tmp_path / "manifest.csv", rows)
    paths = np.array([r.path for r in reversed(rows)])   # train.npz's order, not the manifest's
    weights = engine_weights(tmp_path, paths, {"kokoro": 4.0, "espeak": 0.5})
    assert weights.dtype == np.float32 and weights.mean() == pytest.approx(1.0)
    # A folder's speaker (a1b2c3) and flite count once; kokoro 4x, espeak-ng 0.5x.
    assert (weights / weights[0]).tolist() == pytest.approx([1.0, 4.0, 1.0, 4.0, 0.5])
    assert engine_weights(tmp_path / "absent", paths, {}).tolist() == [1.0] * 5
    with pytest.raises(ValueError, match=r"absent/manifest.csv: not found; train.engine_weights needs the clips'"):
        engine_weights(tmp_path / "absent", paths, {"kokoro": 4.0})
