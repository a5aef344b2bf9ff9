"""backend.features=sagemaker: keyspot.features.extract.run in a SageMaker processing job.

1. params.sagemaker is checked; data/raw, params.yaml and the sourcedir are
   uploaded unless S3 has them already (s3_store, sourcedir);
2. CreateProcessingJob: the TensorFlow training image (it has the Python and
   pip the job needs), whose entrypoint unpacks the sourcedir, installs its
   pinned requirements and runs process_entry.py; no spot (processing jobs
   have none) and no checkpoints (extraction is one pass);
3. the job is followed (lifecycle.follow); Ctrl-C stops it;
4. the files it wrote are downloaded into data/features atomically.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from keyspot import artifacts
from keyspot import params as params_mod
from keyspot.data.manifest import ALL_SPLITS
from keyspot.sagemaker_jobs import JobError, config, lifecycle, printer, sourcedir
from keyspot.sagemaker_jobs.s3_store import Store

STAGE = "features"
INPUT_DIR = "/opt/ml/processing/input"
OUTPUT_DIR = "/opt/ml/processing/output"
# Unpack the code, install its pins, run the entry point (each item at most 256 characters).
ENTRYPOINT = ["/bin/sh", "-c",
              f"set -e; d=/tmp/keyspot-code; mkdir -p $d; tar -xzf {INPUT_DIR}/code/sourcedir.tar.gz -C $d; "
              "cd $d; python3 -m pip install -q --no-cache-dir -r requirements.txt; "
              "exec python3 -m keyspot.sagemaker_jobs.process_entry"]
EXPECTED = ("spec.json", "train.npz", "val.npz", "test.npz")


def _input(name: str, uri: str) -> dict:
    return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": f"{INPUT_DIR}/{name}", "S3DataType": "S3Prefix",
                                           "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}


def request(settings: config.Settings, name: str, inputs: dict[str, str]) -> dict:
    """The CreateProcessingJob request; `inputs` maps code, params and raw to S3 prefixes."""
    cfg = settings.cfg
    return {
        "ProcessingJobName": name,
        "RoleArn": settings.role,
        "AppSpecification": {"ImageUri": settings.image, "ContainerEntrypoint": ENTRYPOINT},
        "ProcessingInputs": [_input(key, uri) for key, uri in inputs.items()],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "output", "S3Output": {
            "S3Uri": settings.uri("jobs", name, "output"), "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": cfg.instance_count,
                                                  "InstanceType": cfg.instance_type,
                                                  "VolumeSizeInGB": cfg.volume_gb}},
        "StoppingCondition": {"MaxRuntimeInSeconds": cfg.max_runtime_s},
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "Tags": settings.tags(STAGE),
    }


def install_outputs(store: Store, described: dict, out_dir: Path) -> dict[str, int]:
    """The job's features, downloaded into `out_dir` atomically; return clips per split."""
    (output,) = described["ProcessingOutputConfig"]["Outputs"]
    uri = output["S3Output"]["S3Uri"].rstrip("/") + "/features/"
    artifacts.clear_stale(out_dir)
    with artifacts.staged_dir(out_dir) as staged:
        store.download_prefix(uri, staged)
        missing = [name for name in EXPECTED if not (staged / name).is_file()]
        if missing:
            raise JobError(f"{uri} lacks {', '.join(missing)}; see the job's logs")
        counts = {}
        for split in ALL_SPLITS:   # test_engine only where the dataset holds an engine out
            if split not in ("train", "val", "test") and not (staged / f"{split}.npz").is_file():
                continue
            with np.load(staged / f"{split}.npz", allow_pickle=False) as data:
                counts[split] = len(data["y"])
    return counts


def run(params, raw_dir: Path, out_dir: Path, params_file: Path = params_mod.PARAMS_FILE) -> dict[str, int]:
    """Extract features in a SageMaker processing job into `out_dir`; return clips per split."""
    say = printer(STAGE)
    settings = config.check(params.sagemaker, spot=False)
    step = "connect"
    try:
        s3, sm, logs = lifecycle.clients(settings.cfg.region)
        store = Store(s3, settings, say)
        step = f"upload to s3://{settings.cfg.bucket}"
        code, _ = sourcedir.build()
        inputs = {"code": store.put_bytes(code, "code", "sourcedir.tar.gz", "code (keyspot and its pinned "
                                          "requirements)"),
                  "params": store.put_bytes(Path(params_file).read_bytes(), "inputs", "params.yaml",
                                            f"params ({params_file})")}
        inputs = {key: uri.rsplit("/", 1)[0] + "/" for key, uri in inputs.items()}
        with tempfile.TemporaryDirectory(prefix="keyspot-sagemaker-") as scratch:
            inputs["raw"] = store.put_folder(Path(raw_dir), "raw", Path(scratch))
    except (BotoCoreError, ClientError) as err:
        raise JobError(f"{step}: {err}") from None

    name = lifecycle.job_name(STAGE)
    described = lifecycle.follow(lifecycle.PROCESSING, sm, logs, request(settings, name, inputs),
                                 region=settings.cfg.region, poll_s=settings.cfg.poll_s,
                                 stream_logs=settings.cfg.stream_logs, say=say)
    say(f"downloading the outputs of {name}")
    try:
        return install_outputs(store, described, Path(out_dir))
    except (BotoCoreError, ClientError) as err:
        raise JobError(f"download the outputs of {name}: {err}") from None
