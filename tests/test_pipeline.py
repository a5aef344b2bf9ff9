"""The whole pipeline on the smoke experiment, in a scratch copy of the repo.

One `dvc repro` feeds every test here: outputs, reproducible bytes, DVC's
view of the workspace, the MLflow run, `dvc exp run` rerunning only what a
param change touches, and `keyspot predict` on real and broken files.
"""

from __future__ import annotations

import json

import pytest
from scratch_repo import GIT
from scratch_repo import run as _run

pytestmark = pytest.mark.slow

# The `pipeline` fixture (tests/conftest.py, built by tests/scratch_repo.py) is
# shared with test_remote.py: one `dvc repro` for both.


def test_every_stage_ran(pipeline):
    for stage in ("fetch", "features", "train", "evaluate", "quantize", "c-export", "sagemaker-deploy"):
        assert f"Running stage '{stage}'" in pipeline["repro"]


def test_outputs_follow_the_stage_contracts(pipeline):
    root = pipeline["root"]
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    quant = json.loads((root / "reports/quantize.json").read_text())
    assert quant["model_bytes"] == (root / "models/model_int8.tflite").stat().st_size
    assert quant["tflm_arena_bytes"] > 0
    assert quant["tflite_tflm_max_output_diff"] <= 1  # one int8 step at most
    assert 0.0 <= quant["tflite_tflm_label_agreement"] <= 1.0
    spec = json.loads((root / "data/features/spec.json").read_text())
    assert spec["labels"] == json.loads((root / "data/raw/labels.json").read_text())
    assert (root / "models/sagemaker/model.tar.gz").stat().st_size > 0
    assert json.loads((root / "reports/deploy.json").read_text())["enabled"] is False
    generated = root / "firmware/psoc6/source/generated"
    assert any(generated.glob("*.c")) and any(generated.glob("*.h"))
    for line in (root / "reports/train/history.csv").read_text().splitlines()[:1]:
        assert "val_accuracy" in line


def test_nothing_left_to_do(pipeline):
    root, env = pipeline["root"], pipeline["env"]
    assert "Data and pipelines are up to date" in _run(["dvc", "status"], root, env).stdout
    again = _run(["dvc", "repro"], root, env).stdout
    assert "Running stage" not in again
    assert _run(["git", "status", "--porcelain"], root, env).stdout == ""


def test_fresh_clone_elsewhere_reproduces_identical_bytes(pipeline, tmp_path):
    """A clone at another path (so other memory addresses, other temp names)
    rebuilds every output from scratch and must pin the same hashes."""
    root, env = pipeline["root"], pipeline["env"]
    clone = tmp_path / "a-clone-at-a-path-of-another-length"
    _run([*GIT, "clone", "-q", str(root), str(clone)], tmp_path, env)
    _run(["dvc", "repro"], clone, env)
    diff = _run(["git", "diff", "HEAD", "--stat"], clone, env).stdout
    assert diff == "", f"outputs differ when reproduced in another clone:\n{diff}"


def test_mlflow_run_has_params_metrics_and_tags(pipeline):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=pipeline["env"]["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("keyspot-synthetic")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    run = runs[0]
    assert run.data.params["train.epochs"] == "2"
    assert "test_accuracy" in run.data.metrics, "evaluate did not log into the train run"
    assert "int8_accuracy_tflm" in run.data.metrics, "quantize did not log into the train run"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2]
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40


def test_exp_run_reruns_train_and_after_only(pipeline):
    root, env = pipeline["root"], pipeline["env"]
    out = _run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "train.epochs=1"], root, env).stdout
    assert "Running stage 'train'" in out
    assert "Running stage 'quantize'" in out
    assert "Running stage 'fetch'" not in out
    assert "Running stage 'features'" not in out
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], root, env).stdout)
    epochs = [exp["data"]["params"]["params.yaml"]["data"]["train"]["epochs"]
              for baseline in shown for group in baseline.get("experiments") or []
              for exp in group["revs"]]
    assert 1 in epochs, shown

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("keyspot-synthetic")
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert latest.data.tags.get("dvc.exp_name"), "the experiment's name is not on its MLflow run"
    assert latest.data.params["train.epochs"] == "1"
    _run(["git", "checkout", "--", "."], root, env)
    _run(["dvc", "checkout", "-q"], root, env, check=False)


def test_predict_labels_good_files_and_names_bad_ones(pipeline, tmp_path):
    root, env = pipeline["root"], pipeline["env"]
    good = sorted((root / "data/raw/clips/yes").glob("*.wav"))[0]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples\n")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])
    result = _run(["keyspot", "predict", "--json", str(empty), str(good), str(not_audio), str(truncated)],
                  root, env, check=False)
    assert result.returncode == 1
    predicted = json.loads(result.stdout)
    assert [p["path"] for p in predicted] == [str(good)]
    assert abs(sum(predicted[0]["probabilities"].values()) - 1) < 0.01
    errors = result.stderr.strip().splitlines()
    for bad in (empty, not_audio, truncated):
        assert sum(str(bad) in line for line in errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    int8 = _run(["keyspot", "predict", "--int8", str(good)], root, env)
    assert str(good) in int8.stdout
