"""MLflow: one run per trained model, shared by the stages that follow.

train opens the run and tags it with the sha256 of models/model.keras;
evaluate and quantize find that run again by the same hash, so every stage
of one `dvc repro` or `dvc exp run` logs into one MLflow run. The run id is
kept out of DVC's outputs on purpose: it differs on every run and would
break byte-reproducible outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

MODEL_HASH_TAG = "keyspot.model_sha256"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
INT8_HASH_TAG = "keyspot.int8_sha256"


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd())


def tracking_uri(params) -> str:
    """MLFLOW_TRACKING_URI wins; a relative sqlite path is made absolute
    against the repository root. DVC sets DVC_ROOT to the workspace's root
    even when a queued experiment runs in a temporary copy, so every
    experiment logs into the same store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        root = _repo_root()
        uri = prefix + str((root / uri[len(prefix):]).resolve())
    return uri


def artifact_root(sqlite_uri: str) -> Path:
    """mlruns/ beside the database of an absolute sqlite:/// URI."""
    return (Path(sqlite_uri[len("sqlite:///"):]).parent / "mlruns").resolve()


def experiment_name(params) -> str:
    return params.tracking.experiment or f"keyspot-{params.dataset.name}"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _setup(params):
    # MLflow's own chatter (alembic migrations, run links) would drown the
    # stage output; warnings still show.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The sagemaker SDK installs sagemaker-mlflow, whose request-header plugin
    # takes every tracking URI for a SageMaker ARN and warns on each request
    # to any other server; the headers it would add are SageMaker's only.
    logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)
    import mlflow

    uri = tracking_uri(params)
    mlflow.set_tracking_uri(uri)
    name = experiment_name(params)
    if uri.startswith("sqlite:") and mlflow.get_experiment_by_name(name) is None:
        # A local store keeps artifacts in mlruns/ beside its database, not in
        # the working directory of whichever run made the experiment first
        # (a queued experiment runs in a temporary copy): the default
        # sqlite:///mlflow.db in the repository's mlruns/, a store elsewhere
        # (a test's) with it, never in the checkout.
        mlflow.create_experiment(name, artifact_location=artifact_root(uri).as_uri())
    experiment = mlflow.set_experiment(name)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        # MLflow 3 opens an experiment without a kind in its GenAI view
        # (traces); keyspot's runs are model training.
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    return mlflow


def _tags(stage: str) -> dict[str, str]:
    tags = {"keyspot.stage": stage}
    if commit := _git_commit():
        tags["mlflow.source.git.commit"] = commit
    if exp := os.environ.get("DVC_EXP_NAME"):
        tags["dvc.exp_name"] = exp
    if base := os.environ.get("DVC_EXP_BASELINE_REV"):
        tags["dvc.baseline_rev"] = base
    return tags


def run_name(params) -> str:
    """The DVC experiment's name when DVC runs one, else model and dataset."""
    return os.environ.get("DVC_EXP_NAME") or f"{params.model.name}-{params.dataset.name}"


def loggable_params(params) -> dict[str, object]:
    """The params flattened, less the empty ones (an unset `tracking.experiment`
    means "the default", not the empty string)."""
    from keyspot.params import flatten

    return {key: value for key, value in flatten(params).items() if value not in ("", None, [])}


@contextmanager
def train_run(params):
    """A new run for a training; params flattened, git and DVC tags set."""
    mlflow = _setup(params)
    with mlflow.start_run(run_name=run_name(params), tags=_tags("train")) as run:
        mlflow.log_params(loggable_params(params))
        yield mlflow, run


@contextmanager
def model_run(params, model_path: Path | str, tag: str = MODEL_HASH_TAG, stage: str = "evaluate"):
    """The run that made `model_path`, found by its hash under `tag`; a new
    run when the model came from elsewhere (a `dvc pull`, another store)."""
    mlflow = _setup(params)
    sha = file_sha256(model_path)
    found = mlflow.search_runs(filter_string=f"tags.`{tag}` = '{sha}'",
                               order_by=["attributes.start_time DESC"], max_results=1,
                               output_format="list")
    if found:
        with mlflow.start_run(run_id=found[0].info.run_id) as run:
            yield mlflow, run
        return
    with mlflow.start_run(run_name=run_name(params), tags={**_tags(stage), tag: sha}) as run:
        mlflow.log_params(loggable_params(params))
        yield mlflow, run


def registered_model_name(params) -> str:
    return params.tracking.registered_model or f"keyspot-{params.dataset.name}-{params.model.name}"


def log_model(mlflow, keras_model, keras_path: Path | str, tflite_path: Path | str, spec_path: Path | str,
              example):
    """The model as an MLflow LoggedModel of the run: keyspot/mlflow_model.py,
    a pyfunc model around the Keras model, with the int8 model and the
    feature spec as artifacts, its input/output signature and an input
    example (one clip's normalised features). Returns its ModelInfo. Its
    name is not `model`: the run's own `model/` artifacts (the files as the
    stages wrote them) keep their path."""
    from mlflow.models import infer_signature

    signature = infer_signature(example, keras_model.predict(example, verbose=0))
    return mlflow.pyfunc.log_model(
        name="keyspot_model", python_model=str(Path(__file__).with_name("mlflow_model.py")), signature=signature,
        input_example=example, pip_requirements=_model_requirements(),
        artifacts={"model.keras": str(keras_path), "model_int8.tflite": str(tflite_path),
                   "spec.json": str(spec_path)})


def _model_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("keras", "tensorflow-cpu", "numpy")]


def register_model(mlflow, run, params, model_info) -> str:
    """Register the run's LoggedModel (model_info) as a new version of the
    registered model; a rerun for the same run reuses its version. Returns
    the version. The alias moves later, once the firmware export has
    succeeded (log_generated_sources); the description, the model card,
    comes with the model-card stage (log_model_card)."""
    client = mlflow.MlflowClient()
    name = registered_model_name(params)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, description="keyspot keyword-spotting models: the Keras model, "
                                       "model_int8.tflite for the board and the feature spec")
    run_id = run.info.run_id
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    version = existing[0].version if existing else client.create_model_version(
        name, model_info.model_uri, run_id=run_id, model_id=model_info.model_id,
        tags={"keyspot.model": params.model.name}).version
    return str(version)


def log_data_report(mlflow, report_path: Path | str, tables_dir: Path | str) -> None:
    """fetch's data report on the model's run: its counters as metrics
    (clips per split, clipped, silent, skipped), the report and its tables
    as artifacts, and the clips per split and class as a chart."""
    import json

    report_path, tables_dir = Path(report_path), Path(tables_dir)
    if not report_path.is_file():
        return   # a model trained outside the pipeline has no report
    report = json.loads(report_path.read_text())
    counts = {f"data_clips_{split}": n for split, n in report.get("clips", {}).items()}
    counts.update({f"data_{key}": (report[key] or {}).get("clips", 0) for key in ("clipped", "silent")
                   if isinstance(report.get(key), dict)})
    counts["data_skipped"] = len(report.get("skipped") or [])
    mlflow.log_metrics(counts)
    mlflow.log_artifact(str(report_path), "data")
    if tables_dir.is_dir():
        mlflow.log_artifacts(str(tables_dir), "data")
        clips = tables_dir / "clips.csv"
        if clips.is_file():
            mlflow.log_figure(_clips_figure(clips), "data/clips.png")


def _clips_figure(clips_csv: Path):
    """Grouped bars: clips per class, one bar per split."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(clips_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    splits = list(dict.fromkeys(r["split"] for r in rows))
    count = {(r["split"], r["label"]): int(r["clips"]) for r in rows}
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 4))
    width = 0.8 / max(len(splits), 1)
    for k, split in enumerate(splits):
        ax.bar(np.arange(len(labels)) + k * width, [count.get((split, label), 0) for label in labels], width,
               label=split)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right")
    ax.set_ylabel("clips")
    ax.set_title("Clips per class and split")
    ax.legend()
    fig.tight_layout()
    return fig


def log_model_card(params, tflite_path: Path | str, card_path: Path | str, summary_path: Path | str,
                   data_report: Path | str, data_tables: Path | str) -> str | None:
    """The model card, the headline metrics and the data report on the run
    that made the int8 model; the card becomes the description of that run's
    registered version. Returns the version (None: the run has none)."""
    with model_run(params, tflite_path, tag=INT8_HASH_TAG, stage="model-card") as (mlflow, run):
        card = Path(card_path).read_text()
        mlflow.log_artifact(str(card_path), "model_card")
        mlflow.log_artifact(str(summary_path), "model_card")
        mlflow.set_tag("mlflow.note.content", card)   # the run page's description
        log_data_report(mlflow, data_report, data_tables)
        client = mlflow.MlflowClient()
        name = registered_model_name(params)
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
        if not versions:
            return None
        client.update_model_version(name, versions[0].version, description=card)
        return str(versions[0].version)


def log_generated_sources(params, tflite_path: Path | str, out_dir: Path | str,
                          firmware_report: Path | str | None = None) -> str | None:
    """Attach the generated C files (and c-export's report of the model's
    flash and the RAM on the board, as metrics too) to the run that made the
    int8 model, and point `tracking.alias` at that run's registered version:
    only a model whose firmware export succeeded becomes the candidate.
    Returns the version the alias names (None: no alias, or no version of
    this run)."""
    with model_run(params, tflite_path, tag=INT8_HASH_TAG, stage="c-export") as (mlflow, run):
        mlflow.log_artifacts(str(out_dir), "firmware")
        if firmware_report is not None:
            report = json.loads(Path(firmware_report).read_text())
            mlflow.log_metrics({f"firmware_{key}": report[key]
                                for key in ("model_bytes", "model_ram_bytes", "ram_bytes")})
            mlflow.log_artifact(str(firmware_report), "firmware_report")
        if not params.tracking.alias:
            return None
        client = mlflow.MlflowClient()
        name = registered_model_name(params)
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
        if not versions:
            return None
        client.set_registered_model_alias(name, params.tracking.alias, versions[0].version)
        return str(versions[0].version)
