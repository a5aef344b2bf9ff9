"""The whole pipeline on the smoke experiment, in a scratch copy of the repo.

One `dvc repro` feeds every test here: outputs, reproducible bytes, DVC's
view of the workspace, the MLflow run, `dvc exp run` rerunning only what a
param change touches, and `keyspot predict` on real and broken files.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from scratch_repo import GIT, RECORDED, smoke_output_hashes
from scratch_repo import run as _run

from keyspot.data import quiet

pytestmark = pytest.mark.slow

# The `pipeline` fixture (tests/conftest.py, built by tests/scratch_repo.py) is
# shared with test_remote.py: one `dvc repro` for both.


def test_every_stage_ran(pipeline):
    for stage in ("fetch", "streams", "features", "train", "evaluate", "quantize", "calibrate", "c-export",
                  "stream-eval", "sagemaker-deploy"):
        assert f"Running stage '{stage}'" in pipeline["repro"]


def test_outputs_follow_the_stage_contracts(pipeline):
    root = pipeline["root"]
    metrics = json.loads((root / "reports/metrics.json").read_text())
    labels = json.loads((root / "data/raw/labels.json").read_text())
    for split in ("test", "test_engine"):   # unseen speakers; the held-out engine (Pico)
        entry = metrics[split]
        assert 0.0 <= entry["accuracy"] <= 1.0 and 0.0 <= entry["int8_accuracy"] <= 1.0
        assert set(entry["recall"]) == set(labels) and set(entry["recall"]["yes"]) == {"float", "int8"}
        assert (root / "reports/eval" / f"{'' if split == 'test' else split + '_'}confusion.png").is_file()
        # Each clip's path, speaker and both models' top label: the errors one can list and hear.
        with open(root / "reports/eval" / f"{'' if split == 'test' else split + '_'}predictions.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == entry["examples"]
        assert {"path", "speaker", "actual", "predicted", "probability", "int8_predicted",
                "int8_probability"} <= set(rows[0])
        assert all((root / "data/raw" / r["path"]).is_file() and r["speaker"] for r in rows)
        int8_right = sum(r["actual"] == r["int8_predicted"] for r in rows) / len(rows)
        assert int8_right == pytest.approx(entry["int8_accuracy"], abs=1e-6)
    per_class = (root / "reports/eval/per_class.csv").read_text().splitlines()[0].split(",")
    assert {"recall", "int8_recall", "int8_f1"} <= set(per_class)
    assert set(metrics["quiet"]["per_kind"]) == set(quiet.KINDS)
    assert 0.0 <= metrics["quiet"]["keyword_rate"] <= 1.0
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
    # Streams: calibrate chose the recognizer on val, the firmware has it, stream-eval measured with it.
    calibration = json.loads((root / "reports/calibration.json").read_text())
    from keyspot.recognizer import from_header

    board = from_header(generated)
    assert {k: getattr(board, k) for k in calibration["recognizer"]} == calibration["recognizer"]
    stream = json.loads((root / "reports/stream.json").read_text())
    assert stream["recognizer"] == calibration["recognizer"]
    for split in ("test", "test_engine"):
        entry = stream[split]
        assert entry["keywords"] > 0 and 0.0 <= entry["false_reject_rate"] <= 1.0
        assert entry["false_accepts_per_hour"] >= 0
        assert set(entry["per_keyword"]) <= set(labels)
        det = (root / f"reports/stream/det_{split}.csv").read_text().splitlines()
        assert det[0] == "threshold,false_reject_rate,false_accepts_per_hour" and len(det) > 10


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


def test_outputs_are_the_recorded_bytes(pipeline):
    """Every output but those that pack keyspot's code has the md5 recorded
    in tests/smoke_outputs.json: reorganising the code must not move a byte.
    A change meant to change outputs records them again
    (`python tests/scratch_repo.py record`) and says so in its commit."""
    recorded = json.loads(RECORDED.read_text())["outputs"]
    found = smoke_output_hashes(pipeline["root"])
    changed = sorted(path for path in recorded.keys() | found.keys() if recorded.get(path) != found.get(path))
    assert not changed, f"outputs differ from {RECORDED.name}: {changed}"


def test_mlflow_run_has_params_metrics_and_tags(pipeline):
    import mlflow

    uri = pipeline["env"]["MLFLOW_TRACKING_URI"]
    # The registry URI would otherwise default to a local store, not the server's.
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("keyspot-synthetic")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    run = runs[0]
    assert run.data.params["train.epochs"] == "2"
    assert "test_accuracy" in run.data.metrics, "evaluate did not log into the train run"
    assert "int8_accuracy_tflm" in run.data.metrics, "quantize did not log into the train run"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2]
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    assert pipeline["env"]["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:"), "not the real server"

    def listed(path=None, run_id=run.info.run_id):
        for item in client.list_artifacts(run_id, path):
            yield from listed(item.path, run_id) if item.is_dir else [item.path]

    logged = set(listed())
    for expected in ("evaluate/confusion.png", "model/model.keras", "model/model_int8.tflite",
                     "firmware/model_data.c", "firmware/frontend_tables.c", "firmware_report/firmware.json"):
        assert expected in logged, sorted(logged)
    board = json.loads((pipeline["root"] / "reports/firmware.json").read_text())
    assert run.data.metrics["firmware_ram_bytes"] == board["ram_bytes"] > board["model_ram_bytes"] > 0
    # The alias points at the model exported last (other tests export other
    # models in this repo): only a model whose firmware export succeeded gets
    # it, so its run holds the generated C, and the registered version
    # downloads the int8 model its run is tagged with.
    version = client.get_model_version_by_alias("keyspot-synthetic-ds_cnn_s", "candidate")
    assert "firmware/model_data.c" in set(listed(run_id=version.run_id))
    tagged = client.get_run(version.run_id).data.tags["keyspot.int8_sha256"]
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        client.get_model_version_download_uri("keyspot-synthetic-ds_cnn_s", version.version), tracking_uri=uri)
    # The version is the LoggedModel: the pyfunc model, with the int8 model among its artifacts.
    assert hashlib.sha256((Path(local) / "artifacts/model_int8.tflite").read_bytes()).hexdigest() == tagged


def test_two_hydra_overrides_rerun_train_and_after_only(pipeline):
    """A model group override and a train value: the data stages are reused."""
    root, env = pipeline["root"], pipeline["env"]
    out = _run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "model=tiny_conv",
                "-S", "train.lr=0.001"], root, env).stdout
    for stage in ("train", "evaluate", "quantize", "calibrate", "c-export", "stream-eval", "sagemaker-deploy"):
        assert f"Running stage '{stage}'" in out, out
    for stage in ("fetch", "streams", "features"):
        assert f"Running stage '{stage}'" not in out, out
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], root, env).stdout)
    composed = [exp["data"]["params"]["params.yaml"]["data"]
                for baseline in shown for group in baseline.get("experiments") or []
                for exp in group["revs"]]
    assert any(p["model"]["name"] == "tiny_conv" and p["train"]["lr"] == 0.001 for p in composed), shown

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("keyspot-synthetic")
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert latest.data.tags.get("dvc.exp_name"), "the experiment's name is not on its MLflow run"
    assert latest.data.params["model.name"] == "tiny_conv"
    assert latest.data.params["train.lr"] == "0.001"
    moved = client.get_model_version_by_alias("keyspot-synthetic-tiny_conv", "candidate")
    assert moved.run_id == latest.info.run_id, "the alias does not point at the newest model"
    _run(["git", "checkout", "--", "."], root, env)
    _run(["dvc", "checkout", "-q"], root, env, check=False)


def test_a_new_false_accept_target_reruns_calibration_and_what_follows_only(pipeline):
    root, env = pipeline["root"], pipeline["env"]
    out = _run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "calibrate.target_false_accepts_per_hour=30"],
               root, env).stdout
    ran = {stage for stage in ("fetch", "streams", "features", "train", "quantize", "evaluate", "calibrate",
                               "c-export", "stream-eval", "sagemaker-deploy") if f"Running stage '{stage}'" in out}
    # stream-eval reruns when the calibrated parameters, and so the firmware's, change.
    assert {"calibrate", "c-export"} <= ran <= {"calibrate", "c-export", "stream-eval"}, out
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
    # Every file, in order; the bad ones with their error.
    assert [p["path"] for p in predicted] == [str(empty), str(good), str(not_audio), str(truncated)]
    assert [("error" in p) for p in predicted] == [True, False, True, True]
    assert abs(sum(predicted[1]["probabilities"].values()) - 1) < 0.01
    errors = result.stderr.strip().splitlines()
    for bad in (empty, not_audio, truncated):
        assert sum(str(bad) in line for line in errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    int8 = _run(["keyspot", "predict", "--int8", str(good)], root, env)
    assert str(good) in int8.stdout


def test_metrics_show_leads_with_the_headline_in_a_terminal(pipeline):
    root, env = pipeline["root"], pipeline["env"]
    shown = _run(["dvc", "metrics", "show"], root, {**env, "COLUMNS": "160"}).stdout
    lines = shown.rstrip("\n").splitlines()
    assert max(len(line) for line in lines) <= 160, shown
    assert len(lines) == 2 and lines[1].startswith("reports/summary.json"), shown
    for column in ("test.float", "test.int8", "engine.float", "engine.int8", "model_bytes", "arena_bytes",
                   "ram_bytes", "stream.miss", "stream.fa_per_h"):
        assert column in lines[0], shown


def test_plots_show_and_diff(pipeline, tmp_path):
    root, env = pipeline["root"], pipeline["env"]
    shown = json.loads(_run(["dvc", "plots", "show", "--json"], root, env).stdout)["data"]
    assert {"Confusion matrix (test split)", "Training accuracy", "Training loss"} <= set(shown), set(shown)
    confusion = shown["Confusion matrix (test split)"][0]["content"]["data"]["values"]
    assert len(confusion) == json.loads((root / "reports/metrics.json").read_text())["test"]["examples"]
    assert {"actual", "predicted"} <= set(confusion[0])
    curve = shown["Training accuracy"][0]["content"]["data"]["values"]
    assert {"epoch", "accuracy", "val_accuracy"} & set(curve[0])
    out = tmp_path / "plots"
    _run(["dvc", "plots", "diff", "HEAD", "-o", str(out)], root, env)
    assert (out / "index.html").is_file()


def test_queued_sweep_runs_every_combination(pipeline):
    """`dvc exp run --queue` with comma-separated choices, then `dvc queue start`.
    The sweep is over the calibration target, so each experiment reruns
    calibration and what follows it, not training."""
    import time

    root, env = pipeline["root"], pipeline["env"]
    _run(["dvc", "exp", "run", "--queue", "-S", "experiment=smoke",
          "-S", "calibrate.target_false_accepts_per_hour=0.5,2"], root, env)
    _run(["dvc", "queue", "start", "-j", "1"], root, env)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = _run(["dvc", "queue", "status"], root, env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(5)
    assert "Failed" not in status, status
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], root, env).stdout)
    done = {exp["data"]["params"]["params.yaml"]["data"]["calibrate"]["target_false_accepts_per_hour"]
            for baseline in shown for group in baseline.get("experiments") or []
            for exp in group["revs"] if exp["data"].get("metrics")}
    assert {0.5, 2.0} <= done, status
