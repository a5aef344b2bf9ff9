"""backend.train=sagemaker: keyspot.train.run in a SageMaker training job.

1. params.sagemaker is checked; data/features (and data/raw, when training
   augments its clips or weighs engines) are packed and uploaded unless S3 has them already,
   with params.yaml and the sourcedir (s3_store, sourcedir);
2. CreateTrainingJob: the TensorFlow training image in script mode running
   keyspot_train.py (train_entry.py); managed spot with MaxWaitTimeInSeconds
   when sagemaker.spot.enabled; CheckpointConfig maps checkpoints/<training>/
   in S3 to /opt/ml/checkpoints, where train.run keeps its state after every
   epoch, so a spot interruption, or a rerun after Ctrl-C or a timeout,
   resumes from the last epoch (<training> hashes params, inputs and code);
3. the job is followed (lifecycle.follow) inside this training's MLflow run,
   opened here and tagged with the job;
4. model.tar.gz and output.tar.gz are downloaded and their files put where
   train.run puts them, each output atomically, models first;
5. the run gets what train.run logs: each epoch's metrics (from the job's
   history.csv), the model's sha256 tag, the summary and the model, plus
   the job's training and billable seconds.

Every output is the bytes a local run writes (train.run exports the
SavedModel in a fresh process, so the job's checkpoints do not change it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from keyspot import artifacts, tracking
from keyspot import params as params_mod
from keyspot.sagemaker_jobs import JobError, config, contract, folder_tar, lifecycle, printer, sourcedir
from keyspot.sagemaker_jobs.s3_store import Store

STAGE = "train"
DOWNLOAD = "sagemaker-download"
# SageMaker reads these from the job's log lines into CloudWatch metrics (train.run prints
# "epoch 3: loss 0.41, accuracy 0.87, val_loss 0.45, val_accuracy 0.85").
METRICS = [{"Name": "loss", "Regex": r"epoch \d+: loss ([0-9.]+)"},
           {"Name": "accuracy", "Regex": r", accuracy ([0-9.]+)"},
           {"Name": "val_loss", "Regex": r"val_loss ([0-9.]+)"},
           {"Name": "val_accuracy", "Regex": r"val_accuracy ([0-9.]+)"}]


def request(settings: config.Settings, name: str, channels: dict[str, str], code_uri: str,
            checkpoints_uri: str) -> dict:
    """The CreateTrainingJob request."""
    cfg = settings.cfg
    stopping = {"MaxRuntimeInSeconds": cfg.max_runtime_s}
    if cfg.spot.enabled:
        stopping["MaxWaitTimeInSeconds"] = cfg.spot.max_wait_s
    hyperparameters = {  # JSON-encoded, as the sagemaker SDK sends them and the toolkit reads them
        "sagemaker_program": sourcedir.TRAIN_SCRIPT,
        "sagemaker_submit_directory": code_uri,
        "sagemaker_region": cfg.region,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": name,
        "checkpoint_dir": contract.CHECKPOINT_DIR,
    }
    return {
        "TrainingJobName": name,
        "RoleArn": settings.role,
        "AlgorithmSpecification": {"TrainingImage": settings.image, "TrainingInputMode": "File",
                                   "MetricDefinitions": METRICS},
        "HyperParameters": {key: json.dumps(value) for key, value in hyperparameters.items()},
        "InputDataConfig": [{"ChannelName": channel, "InputMode": "File",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                                             "S3DataDistributionType": "FullyReplicated"}}}
                            for channel, uri in channels.items()],
        "OutputDataConfig": {"S3OutputPath": settings.uri("jobs")},
        "ResourceConfig": {"InstanceType": cfg.instance_type, "InstanceCount": cfg.instance_count,
                           "VolumeSizeInGB": cfg.volume_gb},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": cfg.spot.enabled,
        "CheckpointConfig": {"S3Uri": checkpoints_uri, "LocalPath": contract.CHECKPOINT_DIR},
        "Tags": settings.tags(STAGE),
    }


def install_outputs(store: Store, described: dict, models_dir: Path, reports_dir: Path) -> None:
    """The job's model.tar.gz and output.tar.gz, put where train.run writes, as one set."""
    model_uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    output_uri = model_uri.rsplit("/", 1)[0] + "/output.tar.gz"
    models_dir.mkdir(parents=True, exist_ok=True)
    artifacts.clear_stale(models_dir / DOWNLOAD)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".{DOWNLOAD}.") as tmp:
        tmp = Path(tmp)
        model = folder_tar.unpack(store.download(model_uri, tmp / "model.tar.gz"), tmp / "model")
        output = folder_tar.unpack(store.download(output_uri, tmp / "output.tar.gz"), tmp / "output")
        expected = (model / "model.keras", model / "saved_model" / "saved_model.pb",
                    output / "train" / "history.csv", output / "train" / "summary.json")
        missing = [p.relative_to(tmp).as_posix() for p in expected if not p.is_file()]
        if missing:
            raise JobError(f"{model_uri} and {output_uri} lack {', '.join(missing)}; see the job's logs")
        artifacts.install_together({model / "model.keras": models_dir / "model.keras",
                                    model / "saved_model": models_dir / "saved_model",
                                    output / "train": reports_dir})


def log_to_mlflow(mlflow, models_dir: Path, reports_dir: Path, summary: dict, described: dict) -> None:
    """What train.run logs to its run, from the job's outputs."""
    with open(reports_dir / "history.csv", newline="") as f:
        for row in csv.DictReader(f):
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
    keras_path = models_dir / "model.keras"
    mlflow.set_tag(tracking.MODEL_HASH_TAG, tracking.file_sha256(keras_path))
    mlflow.log_metrics({"best_val_accuracy": summary["best_val_accuracy"], "best_epoch": summary["best_epoch"],
                        "model_params": summary["params"], "model_macs": summary["macs"]})
    seconds = {metric: described[key] for key, metric in (("TrainingTimeInSeconds", "sagemaker_training_s"),
                                                          ("BillableTimeInSeconds", "sagemaker_billable_s"))
               if key in described}
    if seconds:
        mlflow.log_metrics(seconds)
    mlflow.log_artifact(str(keras_path), "model")
    mlflow.log_artifact(str(reports_dir / "history.csv"), "train")


def reads_raw(params) -> bool:
    """Whether train.run reads data/raw: the training clips, to augment them,
    and the manifest's speakers, to weigh engines."""
    return params.train.augment.prob > 0 or bool(params.train.engine_weights)


def run(params, features_dir: Path, models_dir: Path, reports_dir: Path, raw_dir: Path = Path("data/raw"),
        params_file: Path = params_mod.PARAMS_FILE) -> dict:
    """Train in a SageMaker training job; write what train.run writes; return the summary."""
    say = printer(STAGE)
    settings = config.check(params.sagemaker, spot=True)
    features_dir, models_dir, reports_dir = Path(features_dir), Path(models_dir), Path(reports_dir)
    step = "connect"
    try:
        s3, sm, logs = lifecycle.clients(settings.cfg.region)
        store = Store(s3, settings, say)
        step = f"upload to s3://{settings.cfg.bucket}"
        channels = {"params": store.put_bytes(Path(params_file).read_bytes(), "inputs", "params.yaml",
                                              f"params ({params_file})").rsplit("/", 1)[0] + "/"}
        with tempfile.TemporaryDirectory(prefix="keyspot-sagemaker-") as scratch:
            channels["features"] = store.put_folder(features_dir, "features", Path(scratch))
            if reads_raw(params):
                channels["raw"] = store.put_folder(Path(raw_dir), "raw", Path(scratch))
        code, _ = sourcedir.build()
        code_uri = store.put_bytes(code, "code", "sourcedir.tar.gz", "code (keyspot and its pinned requirements)")
    except (BotoCoreError, ClientError) as err:
        raise JobError(f"{step}: {err}") from None

    training = hashlib.sha256(json.dumps([channels, code_uri]).encode()).hexdigest()[:16]
    name = lifecycle.job_name(STAGE)
    job = request(settings, name, channels, code_uri, settings.uri("checkpoints", training))
    with tracking.train_run(params) as (mlflow, _):
        mlflow.set_tags({"keyspot.backend": "sagemaker", "sagemaker.training_job": name,
                         "sagemaker.instance_type": settings.cfg.instance_type,
                         "sagemaker.spot": str(settings.cfg.spot.enabled).lower()})
        described = lifecycle.follow(lifecycle.TRAINING, sm, logs, job, region=settings.cfg.region,
                                     poll_s=settings.cfg.poll_s, stream_logs=settings.cfg.stream_logs,
                                     say=say)
        seconds = described.get("TrainingTimeInSeconds"), described.get("BillableTimeInSeconds")
        if all(seconds):
            say(f"{name}: {seconds[0]} s of training, {seconds[1]} s billed"
                + (f" (spot saved {1 - seconds[1] / seconds[0]:.0%})" if seconds[1] < seconds[0] else ""))
        say(f"downloading the outputs of {name}")
        try:
            install_outputs(store, described, models_dir, reports_dir)
        except (BotoCoreError, ClientError) as err:
            raise JobError(f"download the outputs of {name}: {err}") from None
        summary = json.loads((reports_dir / "summary.json").read_text())
        log_to_mlflow(mlflow, models_dir, reports_dir, summary, described)
    return summary
