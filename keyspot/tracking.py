"""MLflow: one run per trained model, shared by the stages that follow.

train opens the run and tags it with the sha256 of models/model.keras;
evaluate and quantize find that run again by the same hash, so every stage
of one `dvc repro` or `dvc exp run` logs into one MLflow run. The run id is
kept out of DVC's outputs on purpose: it differs on every run and would
break byte-reproducible outputs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

MODEL_HASH_TAG = "keyspot.model_sha256"
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
        # A local store keeps artifacts in the repository's mlruns/, not in
        # the working directory of whichever run made the experiment first
        # (a queued experiment runs in a temporary copy).
        mlflow.create_experiment(name, artifact_location=(_repo_root() / "mlruns").resolve().as_uri())
    mlflow.set_experiment(name)
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


@contextmanager
def train_run(params):
    """A new run for a training; params flattened, git and DVC tags set."""
    from keyspot.params import flatten

    mlflow = _setup(params)
    run_name = os.environ.get("DVC_EXP_NAME") or None
    with mlflow.start_run(run_name=run_name, tags=_tags("train")) as run:
        mlflow.log_params(flatten(params))
        yield mlflow, run


@contextmanager
def model_run(params, model_path: Path | str, tag: str = MODEL_HASH_TAG, stage: str = "evaluate"):
    """The run that made `model_path`, found by its hash under `tag`; a new
    run when the model came from elsewhere (a `dvc pull`, another store)."""
    from keyspot.params import flatten

    mlflow = _setup(params)
    sha = file_sha256(model_path)
    found = mlflow.search_runs(filter_string=f"tags.`{tag}` = '{sha}'",
                               order_by=["attributes.start_time DESC"], max_results=1,
                               output_format="list")
    if found:
        with mlflow.start_run(run_id=found[0].info.run_id) as run:
            yield mlflow, run
        return
    with mlflow.start_run(tags={**_tags(stage), tag: sha}) as run:
        mlflow.log_params(flatten(params))
        yield mlflow, run


def registered_model_name(params) -> str:
    return params.tracking.registered_model or f"keyspot-{params.dataset.name}-{params.model.name}"


def register_model(mlflow, run, params) -> str:
    """Register the run's `model` artifacts (Keras and int8 models) as a new
    version of the registered model; a rerun for the same run reuses its
    version. Returns the version. The alias moves later, once the firmware
    export has succeeded (log_generated_sources)."""
    client = mlflow.MlflowClient()
    name = registered_model_name(params)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, description="keyspot keyword-spotting models "
                                       "(model.keras and model_int8.tflite)")
    run_id = run.info.run_id
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    version = existing[0].version if existing else client.create_model_version(
        name, f"runs:/{run_id}/model", run_id=run_id, tags={"keyspot.model": params.model.name}).version
    return str(version)


def log_generated_sources(params, tflite_path: Path | str, out_dir: Path | str) -> str | None:
    """Attach the generated C files to the run that made the int8 model, and
    point `tracking.alias` at that run's registered version: only a model
    whose firmware export succeeded becomes the candidate. Returns the
    version the alias names (None: no alias, or no version of this run)."""
    with model_run(params, tflite_path, tag=INT8_HASH_TAG, stage="c-export") as (mlflow, run):
        mlflow.log_artifacts(str(out_dir), "firmware")
        if not params.tracking.alias:
            return None
        client = mlflow.MlflowClient()
        name = registered_model_name(params)
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
        if not versions:
            return None
        client.set_registered_model_alias(name, params.tracking.alias, versions[0].version)
        return str(versions[0].version)
