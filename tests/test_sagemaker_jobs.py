"""The features and train stages with backend=sagemaker, against moto's server on loopback.

moto (server mode) is S3, CloudWatch Logs and the SageMaker control plane:
CreateTrainingJob, CreateProcessingJob, StopProcessingJob and the describes
go to it, and the tests read back from it what the stages sent. A moto job is
Completed the moment it is created and never runs anything, so:

- where a test needs a job's outputs, `Containers` plays the part of the
  instance: it downloads the job's inputs from moto's S3 into an /opt/ml tree
  under a temporary folder, runs the job's code from the uploaded sourcedir
  (the training toolkit's steps, or the processing entrypoint's, without the
  pip install: this environment has the pins already), uploads model.tar.gz
  and output.tar.gz (or the processing output) and the job's log lines to
  moto, as SageMaker does;
- what moto cannot do is answered by botocore's Stubber, which checks each
  request against the SageMaker API model: StopTrainingJob (moto 5.2.5 has
  no such call), and DescribeTrainingJob / DescribeProcessingJob where a job
  must be InProgress, Failed or Stopped (moto's jobs are always Completed).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import runpy
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from keyspot import tracking
from keyspot.compose import write_params
from keyspot.params import from_dict
from keyspot.sagemaker_jobs import JobError, config, folder_tar, lifecycle, sourcedir

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
BUCKET = "kws-jobs"
ROLE = "arn:aws:iam::123456789012:role/keyspot-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NOWHERE = "http://127.0.0.1:9"  # the discard port: a stubbed client never gets there
EPOCHS = 3
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


# --- moto, and the parts of SageMaker it lacks ---------------------------------------------------------------

@pytest.fixture
def aws(moto_server, tmp_path, monkeypatch):
    """AWS as a user configures it (environment only), pointed at a fresh moto."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv(config.ROLE_ENV, raising=False)
    for name, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client("s3").create_bucket(Bucket=BUCKET)
    return moto_server


def client(service: str, url: str | None = None):
    return boto3.client(service, region_name=REGION, endpoint_url=url, **CREDENTIALS)


class SageMaker:
    """moto's SageMaker client; the operations in `stubbed` go to a Stubber-checked client instead,
    and with `containers`, every created job also runs (see the module docstring)."""

    def __init__(self, stubbed=(), containers: Containers | None = None):
        self.moto = client("sagemaker")
        self.stubbed_client = boto3.client("sagemaker", region_name=REGION, endpoint_url=NOWHERE, **CREDENTIALS)
        self.stubber = Stubber(self.stubbed_client)
        self.stubber.activate()
        self.stubbed, self.containers = set(stubbed), containers
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        target = self.stubbed_client if name in self.stubbed else self.moto

        def call(**kwargs):
            self.calls.append((name, kwargs))
            answer = getattr(target, name)(**kwargs)
            if self.containers is not None and name.startswith("create_") and name.endswith("_job"):
                self.containers.run(name, kwargs)
            return answer
        return call if name not in ("get_paginator", "get_waiter") else getattr(target, name)


@pytest.fixture
def use(monkeypatch):
    """Make the stages use this SageMaker client (S3 and CloudWatch Logs stay moto's, via the environment)."""
    def install(sagemaker: SageMaker) -> SageMaker:
        real = lifecycle.clients

        def clients(region):
            s3, _, logs = real(region)
            return s3, sagemaker, logs
        monkeypatch.setattr(lifecycle, "clients", clients)
        return sagemaker
    return install


def download_prefix(uri: str, dest: Path) -> None:
    s3 = client("s3")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(dest / relative))


def upload_folder(folder: Path, uri: str) -> None:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client("s3").upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}")


def tar_gz(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return dest


class Containers:
    """What a SageMaker instance does with a created job, run here on moto's S3 (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = root

    def _env(self, **paths) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLFLOW_", "AWS_"))}
        return {**env, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **{k: str(v) for k, v in paths.items()}}

    def _logs(self, group: str, name: str, output: str) -> None:
        logs = client("logs")
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        stream = f"{name}/algo-1-1767225600"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now, "message": line} for line in output.splitlines() if line])

    def run(self, operation: str, request: dict) -> None:
        (self._training if operation == "create_training_job" else self._processing)(request)

    def _training(self, request: dict) -> None:
        name = request["TrainingJobName"]
        root = self.root / name
        for channel in request["InputDataConfig"]:
            download_prefix(channel["DataSource"]["S3DataSource"]["S3Uri"],
                            root / "input/data" / channel["ChannelName"])
        hyperparameters = dict(request["HyperParameters"])
        checkpoints = root / request["CheckpointConfig"]["LocalPath"].removeprefix("/opt/ml/")
        hyperparameters["checkpoint_dir"] = json.dumps(str(checkpoints))  # /opt/ml moved under root
        (root / "input/config").mkdir(parents=True)
        (root / "input/config/hyperparameters.json").write_text(json.dumps(hyperparameters))
        download_prefix(request["CheckpointConfig"]["S3Uri"], checkpoints)
        code = root / "code"
        code.mkdir()
        download_prefix(json.loads(hyperparameters["sagemaker_submit_directory"]), root / "submit")
        folder_tar.unpack(root / "submit" / "sourcedir.tar.gz", code)
        args = [a for k, v in hyperparameters.items() if not k.startswith("sagemaker_") for a in (f"--{k}", json.loads(v))]
        done = subprocess.run([sys.executable, json.loads(hyperparameters["sagemaker_program"]), *args], cwd=code,
                              env=self._env(SM_INPUT_DIR=root / "input", SM_MODEL_DIR=root / "model",
                                            SM_OUTPUT_DIR=root / "output", SM_OUTPUT_DATA_DIR=root / "output/data"),
                              capture_output=True, text=True, timeout=600)
        self._logs("/aws/sagemaker/TrainingJobs", name, done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        upload_folder(checkpoints, request["CheckpointConfig"]["S3Uri"])
        output = f"{request['OutputDataConfig']['S3OutputPath']}/{name}/output"
        (root / "out").mkdir()
        tar_gz(root / "model", root / "out/model.tar.gz")
        tar_gz(root / "output/data", root / "out/output.tar.gz")
        upload_folder(root / "out", output)

    def _processing(self, request: dict) -> None:
        name = request["ProcessingJobName"]
        root = self.root / name
        for item in request["ProcessingInputs"]:
            download_prefix(item["S3Input"]["S3Uri"], root / item["S3Input"]["LocalPath"].removeprefix("/opt/ml/"))
        code = root / "code"
        folder_tar.unpack(root / "processing/input/code/sourcedir.tar.gz", code)
        done = subprocess.run([sys.executable, "-m", "keyspot.sagemaker_jobs.process_entry"], cwd=code,
                              env=self._env(KEYSPOT_OPT_ML=root), capture_output=True, text=True, timeout=600)
        self._logs("/aws/sagemaker/ProcessingJobs", name, done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        (output,) = request["ProcessingOutputConfig"]["Outputs"]
        upload_folder(root / output["S3Output"]["LocalPath"].removeprefix("/opt/ml/"), output["S3Output"]["S3Uri"])


# --- workspaces ----------------------------------------------------------------------------------------------

def settings(smoke_dict, **changes) -> dict:
    """The smoke params, EPOCHS epochs, with `changes` as dotted keys."""
    params = json.loads(json.dumps(smoke_dict))
    params["train"].update(epochs=EPOCHS, patience=0)
    params["sagemaker"].update(bucket=BUCKET, role_arn=ROLE, poll_s=1)
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    return params


def workspace(root: Path, data: Path, params: dict, features: bool = True) -> Path:
    (root / "data").mkdir(parents=True)
    shutil.copytree(data / "raw", root / "data/raw")
    if features:
        shutil.copytree(data / "features", root / "data/features")
    write_params(params, root / "params.yaml")
    return root


def run_stage(name: str, ws: Path, monkeypatch) -> int:
    """Run stages/<name>.py in this process, as `python stages/<name>.py` would; return the exit status."""
    monkeypatch.chdir(ws)
    try:
        runpy.run_path(str(REPO / "stages" / f"{name}.py"), run_name="__main__")
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def outs(ws: Path, stage: str) -> dict[str, bytes]:
    """Every file of the stage's outs in dvc.yaml, by path: what dvc.lock hashes."""
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["outs"]
    files = {}
    for out in declared:
        out = out if isinstance(out, str) else next(iter(out))   # `- path: {persist: true}`
        path = ws / out
        files |= ({f"{out}/{k}": v for k, v in tree(path).items()} if path.is_dir() else {out: path.read_bytes()})
    return files


# --- (c) the stages, end to end -----------------------------------------------------------------------------

def test_features_stage_on_sagemaker_writes_the_local_features_and_uploads_once(aws, use, tiny_data, smoke_dict,
                                                                               tmp_path, monkeypatch, capsys):
    sagemaker = use(SageMaker(containers=Containers(tmp_path / "instances")))
    ws = workspace(tmp_path / "ws", tiny_data, settings(smoke_dict, **{"backend.features": "sagemaker"}), features=False)
    assert run_stage("features", ws, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "features: train 24, val 6, test 6" in out.splitlines()[-1]
    # The same files, byte for byte, as extract.run wrote locally from the same clips.
    assert outs(ws, "features") == {f"data/features/{k}": v for k, v in tree(tiny_data / "features").items()}
    assert "uploading to s3://kws-jobs/keyspot/sagemaker/inputs/" in out and "started SageMaker processing job" in out
    assert "features: | features: train 24, val 6, test 6" in out  # the job's own log line, from CloudWatch

    ((_, described),) = [call for call in sagemaker.calls if call[0] == "create_processing_job"]
    assert described["AppSpecification"]["ContainerEntrypoint"][-1].endswith(
        "exec python3 -m keyspot.sagemaker_jobs.process_entry")
    assert described["AppSpecification"]["ImageUri"].endswith("tensorflow-training:2.21-cpu-py312")
    assert described["ProcessingResources"]["ClusterConfig"] == {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                                 "VolumeSizeInGB": 30}
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert sorted(i["InputName"] for i in described["ProcessingInputs"]) == ["code", "params", "raw"]

    # A second run uploads nothing: every input is already in S3 under its content's hash.
    assert run_stage("features", ws, monkeypatch) == 0
    again = capsys.readouterr().out
    assert "uploading" not in again and again.count("already in s3://") == 3
    assert outs(ws, "features") == {f"data/features/{k}": v for k, v in tree(tiny_data / "features").items()}


@pytest.mark.slow  # a local and a SageMaker-side training, each in a fresh process
def test_train_stage_on_sagemaker_writes_what_a_local_run_writes(aws, use, tiny_data, smoke_dict, tmp_path, monkeypatch,
                                                                 capsys):
    local = workspace(tmp_path / "local", tiny_data, settings(smoke_dict))
    done = subprocess.run([sys.executable, str(REPO / "stages/train.py")], cwd=local, capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'local.db'}"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    use(SageMaker(containers=Containers(tmp_path / "instances")))
    ws = workspace(tmp_path / "ws", tiny_data, settings(smoke_dict, **{"backend.train": "sagemaker"}))
    assert run_stage("train", ws, monkeypatch) == 0
    out = capsys.readouterr().out
    # Every out of the train stage: the same files and the same bytes.
    job, here = outs(ws, "train"), outs(local, "train")
    assert job == here
    assert "models/model.keras" in job and "models/saved_model/variables/variables.index" in job
    assert out.splitlines()[-1] == done.stdout.splitlines()[-1]  # "train: best epoch ..., ... MACs"
    assert "train: | epoch 1: loss" in out  # the job's log, streamed from CloudWatch
    assert not [p for p in (ws / "models").iterdir() if p.name.startswith(".")]

    # One MLflow run, found by the model's hash as evaluate and quantize find it, with every epoch.
    import mlflow

    mlflow.set_tracking_uri(tracking.tracking_uri(from_dict(settings(smoke_dict))))
    sha = tracking.file_sha256(ws / "models/model.keras")
    (run,) = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{tracking.MODEL_HASH_TAG}` = '{sha}'",
                                output_format="list")
    assert run.data.tags["sagemaker.training_job"].startswith("keyspot-train-")
    assert run.data.params["backend.train"] == "sagemaker"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    assert run.info.status == "FINISHED"


def test_the_backend_is_not_a_dvc_param():
    """dvc.lock records the same params whichever backend ran: no stage lists backend.* or sagemaker.*."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    listed = [str(p) for s in stages.values() for p in s.get("params", [])]
    assert not [p for p in listed if p.split(".")[0] in ("backend", "sagemaker")]
    assert "features" in stages["features"]["params"] and "train" in stages["train"]["params"]


# --- (b) the job lifecycle -----------------------------------------------------------------------------------

def described_training(name: str, status: str, secondary: str, **extra) -> dict:
    return {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
            "TrainingJobStatus": status, "SecondaryStatus": secondary, "CreationTime": NOW,
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ResourceConfig": {"VolumeSizeInGB": 30}, "StoppingCondition": {}, "ModelArtifacts": {"S3ModelArtifacts": ""},
            **extra}


def the_job(sagemaker: SageMaker) -> str:
    (name,) = [kwargs["TrainingJobName"] for op, kwargs in sagemaker.calls if op == "create_training_job"]
    return name


class Describe:
    """DescribeTrainingJob answered by the Stubber with `statuses` in turn, for whatever job the stage created."""

    def __init__(self, sagemaker: SageMaker, statuses: list[tuple[str, str, dict]]):
        self.sagemaker, self.statuses = sagemaker, statuses

    def __call__(self, **kwargs):
        status, secondary, extra = self.statuses.pop(0)
        self.sagemaker.stubber.add_response("describe_training_job",
                                            described_training(kwargs["TrainingJobName"], status, secondary, **extra),
                                            {"TrainingJobName": kwargs["TrainingJobName"]})
        self.sagemaker.calls.append(("describe_training_job", kwargs))
        return self.sagemaker.stubbed_client.describe_training_job(**kwargs)


def test_a_failed_training_job_fails_the_stage_with_its_reason(aws, use, tiny_data, smoke_dict, tmp_path, monkeypatch,
                                                                capsys):
    sagemaker = use(SageMaker())
    reason = "AlgorithmError: train: data/features/train.npz: missing; run `dvc repro features`"
    monkeypatch.setattr(sagemaker, "describe_training_job", Describe(sagemaker, [
        ("InProgress", "Starting", {"SecondaryStatusTransitions": [
            {"Status": "Starting", "StartTime": NOW, "StatusMessage": "Launching requested ML instances"}]}),
        ("InProgress", "Training", {}),
        ("Failed", "Failed", {"FailureReason": reason})]), raising=False)
    ws = workspace(tmp_path / "ws", tiny_data, settings(smoke_dict, **{"backend.train": "sagemaker"}))
    assert run_stage("train", ws, monkeypatch) == 2
    captured = capsys.readouterr()
    name = the_job(sagemaker)
    assert captured.err.strip().splitlines()[-1] == f"train: error: SageMaker training job {name} failed: {reason}"
    assert f"{name}: InProgress (Starting): Launching requested ML instances" in captured.out
    assert f"{name}: InProgress (Training)" in captured.out and "Traceback" not in captured.err
    assert not (ws / "models").exists() and not (ws / "reports").exists()

    # What the stage asked for, as moto recorded it: script mode, spot, checkpoints in S3.
    job = client("sagemaker").describe_training_job(TrainingJobName=name)
    prefix = f"s3://{BUCKET}/keyspot/sagemaker"
    assert job["RoleArn"] == ROLE and job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert job["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert job["CheckpointConfig"]["S3Uri"].startswith(f"{prefix}/checkpoints/")
    assert job["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["AlgorithmSpecification"]["TrainingImage"] == \
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.21-cpu-py312"
    assert job["OutputDataConfig"] == {"S3OutputPath": f"{prefix}/jobs"}
    hyper = {k: json.loads(v) for k, v in job["HyperParameters"].items()}
    assert hyper["sagemaker_program"] == sourcedir.TRAIN_SCRIPT and hyper["checkpoint_dir"] == "/opt/ml/checkpoints"
    assert hyper["sagemaker_submit_directory"].startswith(f"{prefix}/code/")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert sorted(channels) == ["features", "params", "raw"]
    s3 = client("s3")
    for channel, uri in channels.items():  # content-addressed: inputs/<sha256>/<file>
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=uri.removeprefix(f"s3://{BUCKET}/"))["Contents"]]
        assert keys == [f"{uri.removeprefix(f's3://{BUCKET}/')}{'params.yaml' if channel == 'params' else channel + '.tar'}"]
    assert s3.get_object(Bucket=BUCKET, Key=f"{channels['params'].removeprefix(f's3://{BUCKET}/')}params.yaml")[
        "Body"].read() == (ws / "params.yaml").read_bytes()
    sagemaker.stubber.assert_no_pending_responses()


def test_ctrl_c_stops_the_training_job(aws, use, tiny_data, smoke_dict, tmp_path, monkeypatch, capsys):
    sagemaker = use(SageMaker(stubbed={"stop_training_job"}))
    monkeypatch.setattr(sagemaker, "describe_training_job",
                        Describe(sagemaker, [("InProgress", "Training", {})]), raising=False)

    def interrupted(seconds):
        sagemaker.stubber.add_response("stop_training_job", {}, {"TrainingJobName": ANY})
        raise KeyboardInterrupt  # Ctrl-C while the stage waits for the next status
    monkeypatch.setattr(lifecycle, "wait", interrupted)
    ws = workspace(tmp_path / "ws", tiny_data, settings(smoke_dict, **{"backend.train": "sagemaker"}))
    assert run_stage("train", ws, monkeypatch) == 130
    captured = capsys.readouterr()
    name = the_job(sagemaker)
    assert ("stop_training_job", {"TrainingJobName": name}) in sagemaker.calls
    assert f"train: Ctrl-C: asked SageMaker to stop training job {name}" in captured.out
    assert "checkpoints stay in S3" in captured.out
    assert "train: interrupted; outputs of this stage were left as they were" in captured.err
    assert not (ws / "models").exists()
    sagemaker.stubber.assert_no_pending_responses()


def test_ctrl_c_stops_the_processing_job(aws, use, tiny_data, smoke_dict, tmp_path, monkeypatch, capsys):
    """moto has StopProcessingJob: the stop reaches it, and the job there is Stopped."""
    sagemaker = use(SageMaker(stubbed={"describe_processing_job"}))
    sagemaker.stubber.add_response("describe_processing_job", {
        "ProcessingJobName": "x", "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/x",
        "ProcessingJobStatus": "InProgress", "CreationTime": NOW, "AppSpecification": {"ImageUri": "i"},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 30}}, "RoleArn": ROLE}, {"ProcessingJobName": ANY})

    def interrupted(seconds):
        raise KeyboardInterrupt
    monkeypatch.setattr(lifecycle, "wait", interrupted)
    ws = workspace(tmp_path / "ws", tiny_data, settings(smoke_dict, **{"backend.features": "sagemaker"}), features=False)
    assert run_stage("features", ws, monkeypatch) == 130
    (job,) = client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
    assert client("sagemaker").describe_processing_job(
        ProcessingJobName=job["ProcessingJobName"])["ProcessingJobStatus"] == "Stopped"
    assert f"asked SageMaker to stop processing job {job['ProcessingJobName']}" in capsys.readouterr().out
    assert not (ws / "data/features").exists()


def test_follow_prints_status_and_cloudwatch_logs_until_completed(aws):
    """On moto alone: the job is created, its log lines printed once each, its description returned."""
    logs = client("logs")
    name = "keyspot-train-test"
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{name}/algo-1-1")
    logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{name}/algo-1-1",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": f"epoch {i}: loss 0.5"}
                                   for i in (1, 2)])
    lines: list[str] = []
    request = {"TrainingJobName": name, "RoleArn": ROLE, "AlgorithmSpecification": {
        "TrainingImage": "image", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/jobs"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}}
    described = lifecycle.follow(lifecycle.TRAINING, client("sagemaker"), logs, request, region=REGION, poll_s=0,
                                 stream_logs=True, say=lines.append)
    assert described["TrainingJobStatus"] == "Completed"
    assert lines[0].startswith(f"started SageMaker training job {name}: https://us-east-1.console.aws.amazon.com/")
    assert lines[1:3] == ["| epoch 1: loss 0.5", "| epoch 2: loss 0.5"] and lines.count("| epoch 1: loss 0.5") == 1


@pytest.mark.parametrize("described, message", [
    ({"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"},
     "was stopped (MaxRuntimeExceeded); raise sagemaker.max_runtime_s"),
    ({"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxWaitTimeExceeded"},
     "no spot capacity in time: raise sagemaker.spot.max_wait_s"),
    ({"ProcessingJobStatus": "Failed", "FailureReason": "AlgorithmError: See job logs for more information",
      "ExitMessage": "features: raw.tar: not a readable tar archive"},
     "failed: AlgorithmError: See job logs for more information (features: raw.tar: not a readable tar archive)"),
])
def test_a_job_that_did_not_complete_names_why(described, message):
    kind = lifecycle.PROCESSING if "ProcessingJobStatus" in described else lifecycle.TRAINING
    sm = boto3.client("sagemaker", region_name=REGION, endpoint_url=NOWHERE, **CREDENTIALS)
    stubber = Stubber(sm)
    name = "keyspot-job"
    stubber.add_response(f"create_{kind.snake}", {f"{kind.api}Arn": f"arn:aws:sagemaker:{REGION}:1:x/{name}"})
    if kind is lifecycle.TRAINING:
        answer = described_training(name, described["TrainingJobStatus"], described["SecondaryStatus"])
        request = {"TrainingJobName": name, "RoleArn": ROLE, "AlgorithmSpecification": {"TrainingInputMode": "File"},
                   "OutputDataConfig": {"S3OutputPath": "s3://b/p"}, "ResourceConfig": {"VolumeSizeInGB": 1},
                   "StoppingCondition": {}}
    else:
        answer = {"ProcessingJobName": name, "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:1:x/{name}",
                  "CreationTime": NOW, "AppSpecification": {"ImageUri": "i"}, "RoleArn": ROLE,
                  "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                            "VolumeSizeInGB": 1}}, **described}
        request = {"ProcessingJobName": name, "RoleArn": ROLE, "AppSpecification": {"ImageUri": "i"},
                   "ProcessingResources": answer["ProcessingResources"]}
    stubber.add_response(f"describe_{kind.snake}", answer)
    stubber.activate()
    with pytest.raises(JobError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lifecycle.follow(kind, sm, None, request, region=REGION, poll_s=0, stream_logs=False, say=lambda _: None)
    stubber.assert_no_pending_responses()


# --- settings ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"sagemaker.bucket": ""}, "sagemaker.bucket is empty"),
    ({"sagemaker.role_arn": ""}, f"no execution role: export {config.ROLE_ENV}"),
    ({"sagemaker.role_arn": "admin"}, "sagemaker.role_arn: 'admin' is not an IAM role ARN"),
    ({"sagemaker.instance_type": "m5.xlarge"}, "sagemaker.instance_type"),
    ({"sagemaker.instance_count": 2}, "sagemaker.instance_count: 2"),
    ({"sagemaker.spot.max_wait_s": 60}, "sagemaker.spot.max_wait_s: 60 is below sagemaker.max_runtime_s"),
    ({"sagemaker.framework_version": "1.0"}, "no TensorFlow training image for '1.0'"),
    ({"sagemaker.max_runtime_s": 0}, "sagemaker.max_runtime_s: 0"),
])
def test_settings_errors_name_the_key(smoke_dict, monkeypatch, changes, message):
    monkeypatch.delenv(config.ROLE_ENV, raising=False)
    cfg = from_dict(settings(smoke_dict, **changes)).sagemaker
    with pytest.raises(JobError, match=message):
        config.check(cfg, spot=True)


def test_settings_role_from_the_environment_and_a_custom_image(smoke_dict, monkeypatch):
    monkeypatch.setenv(config.ROLE_ENV, ROLE)
    checked = config.check(from_dict(settings(smoke_dict, **{"sagemaker.role_arn": "",
                                                             "sagemaker.instance_type": "ml.g5.xlarge"})).sagemaker,
                           spot=True)
    assert checked.role == ROLE and checked.image.endswith("tensorflow-training:2.21-gpu-py312")
    custom = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/keyspot:1"
    assert config.check(from_dict(settings(smoke_dict, **{"sagemaker.image": custom})).sagemaker, spot=False).image == custom
    # Processing jobs have no spot: a short max_wait_s does not matter there.
    config.check(from_dict(settings(smoke_dict, **{"sagemaker.spot.max_wait_s": 1})).sagemaker, spot=False)


def test_the_training_job_gets_data_raw_when_training_reads_it(smoke_params):
    from keyspot.sagemaker_jobs.training import reads_raw

    def with_(prob, weights):
        train = dataclasses.replace(smoke_params.train, engine_weights=weights,
                                    augment=dataclasses.replace(smoke_params.train.augment, prob=prob))
        return dataclasses.replace(smoke_params, train=train)

    assert not reads_raw(with_(0.0, {}))
    assert reads_raw(with_(0.5, {})) and reads_raw(with_(0.0, {"kokoro": 2.0}))
