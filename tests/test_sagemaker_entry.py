"""The jobs' entry points under the SageMaker container contract, run as a container runs them.

The code comes from the sourcedir archive the stages upload, unpacked as the
training toolkit unpacks it; /opt/ml is moved under a temporary root by the
SM_* variables (training) or KEYSPOT_OPT_ML (processing). The job gets the
params with backend=sagemaker, the local run the same params with
backend=local: the outputs must be the same bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyspot import train
from keyspot.compose import write_params
from keyspot.params import from_dict
from keyspot.sagemaker_jobs import config, folder_tar, sourcedir, training

EPOCHS = 4


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    """/opt/ml/code: the sourcedir archive, unpacked."""
    archive = tmp_path_factory.mktemp("archive") / "sourcedir.tar.gz"
    archive.write_bytes(sourcedir.build()[0])
    return folder_tar.unpack(archive, tmp_path_factory.mktemp("code"))


def job_params(smoke_dict, backend: str = "local", **train_changes) -> dict:
    return {**smoke_dict, "train": {**smoke_dict["train"], "epochs": EPOCHS, "patience": 0, **train_changes},
            "backend": {"features": "sagemaker", "train": backend}}


def job_env(root: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLFLOW_"))}
    return {**env, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def training_root(root: Path, params: dict, data: Path, cfg) -> dict:
    """The training container's /opt/ml under `root`, from the stage's own request; returns the environment."""
    settings = config.Settings(cfg=cfg, role="arn:aws:iam::123456789012:role/r", image="image")
    request = training.request(settings, "keyspot-train-test", {}, "s3://bucket/code/sourcedir.tar.gz",
                               "s3://bucket/checkpoints/x")
    hyperparameters = request["HyperParameters"]
    # The checkpoint folder moves with /opt/ml, like every other path.
    assert json.loads(hyperparameters["checkpoint_dir"]) == request["CheckpointConfig"]["LocalPath"]
    hyperparameters["checkpoint_dir"] = json.dumps(str(root / "checkpoints"))
    (root / "input/config").mkdir(parents=True)
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hyperparameters))
    channels = root / "input/data"
    for name in ("params", "features", "raw"):
        (channels / name).mkdir(parents=True)
    write_params(params, channels / "params/params.yaml")
    folder_tar.pack(data / "features", channels / "features/features.tar")
    folder_tar.pack(data / "raw", channels / "raw/raw.tar")
    return job_env(root, SM_INPUT_DIR=str(root / "input"), SM_INPUT_CONFIG_DIR=str(root / "input/config"),
                   SM_MODEL_DIR=str(root / "model"), SM_OUTPUT_DIR=str(root / "output"),
                   SM_OUTPUT_DATA_DIR=str(root / "output/data"), SM_CHANNELS='["features","params","raw"]',
                   **{f"SM_CHANNEL_{c.upper()}": str(channels / c) for c in ("params", "features", "raw")})


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # trains here, in a job killed after its first checkpoint, and in the job resumed
def test_training_entry_resumes_after_a_kill_and_gives_the_local_model(tiny_data, code, smoke_dict, smoke_params,
                                                                         tmp_path, monkeypatch):
    params = job_params(smoke_dict, backend="sagemaker")
    local_params = from_dict(job_params(smoke_dict, backend="local"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # the run's artifacts go to ./mlruns
    train.run(local_params, tiny_data / "features", tmp_path / "local/models", tmp_path / "local/reports/train",
              raw_dir=tiny_data / "raw")

    root = tmp_path / "opt_ml"
    env = training_root(root, params, tiny_data, smoke_params.sagemaker)
    command = [sys.executable, sourcedir.TRAIN_SCRIPT, "--checkpoint_dir", str(root / "checkpoints")]
    # A spot interruption: the instance goes away right after a checkpoint.
    first = subprocess.Popen(command, cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = root / "checkpoints" / "training_state.npz"
    deadline = time.monotonic() + 180
    while not state.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first.kill()
    output = first.communicate()[0].decode()
    assert state.exists(), output[-3000:]
    assert not (root / "model" / "model.keras").exists()

    second = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "checkpoint: resuming after epoch" in second.stdout
    assert not (root / "output" / "failure").exists()
    job, local = tree(root / "model"), tree(tmp_path / "local/models")
    assert sorted(job) == sorted(local)
    # Every file the same bytes, the SavedModel's graph included, although
    # the job checkpointed every epoch and was resumed.
    differing = sorted(name for name in job if job[name] != local.get(name))
    assert not differing   # the names only: pytest's diff of megabytes of bytes takes minutes
    assert tree(root / "output/data") == {f"train/{k}": v for k, v in tree(tmp_path / "local/reports/train").items()}


def test_training_entry_failure_writes_the_reason(tiny_data, code, smoke_dict, smoke_params, tmp_path):
    params = job_params(smoke_dict, backend="sagemaker", epochs="ten")
    root = tmp_path / "opt_ml"
    env = training_root(root, params, tiny_data, smoke_params.sagemaker)
    done = subprocess.run([sys.executable, sourcedir.TRAIN_SCRIPT], cwd=code, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    reason = (root / "output" / "failure").read_text()
    assert reason.startswith("train: ") and "train.epochs: expected an integer" in reason
    assert "params/params.yaml" in reason
    assert "train: error: " in done.stderr and "Traceback" not in done.stderr

    (root / "output" / "failure").unlink()
    write_params(job_params(smoke_dict, backend="sagemaker"), root / "input/data/params/params.yaml")
    (root / "input/data/features/features.tar").unlink()
    (root / "input/data/features").rmdir()
    done = subprocess.run([sys.executable, sourcedir.TRAIN_SCRIPT], cwd=code, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "input 'features'" in (root / "output" / "failure").read_text()
    assert not (root / "model" / "model.keras").exists()


def processing_root(root: Path, params: dict, data: Path) -> dict:
    inputs = root / "processing" / "input"
    (inputs / "params").mkdir(parents=True)
    (inputs / "raw").mkdir()
    write_params(params, inputs / "params" / "params.yaml")
    folder_tar.pack(data / "raw", inputs / "raw" / "raw.tar")
    return job_env(root, KEYSPOT_OPT_ML=str(root))


def test_processing_entry_writes_the_local_features(tiny_data, code, smoke_dict, tmp_path):
    root = tmp_path / "opt_ml"
    env = processing_root(root, job_params(smoke_dict), tiny_data)
    done = subprocess.run([sys.executable, "-m", "keyspot.sagemaker_jobs.process_entry"], cwd=code, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "features: train " in done.stdout
    # Only the features: the job uploads the whole output folder.
    assert [p.name for p in (root / "processing/output").iterdir()] == ["features"]
    assert tree(root / "processing/output/features") == tree(tiny_data / "features")
    assert not (root / "output" / "message").exists()


def test_processing_entry_failure_writes_the_message(tiny_data, code, smoke_dict, tmp_path):
    root = tmp_path / "opt_ml"
    env = processing_root(root, job_params(smoke_dict), tiny_data)
    (root / "processing/input/raw/raw.tar").write_bytes(b"not a tar")
    done = subprocess.run([sys.executable, "-m", "keyspot.sagemaker_jobs.process_entry"], cwd=code, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    message = (root / "output" / "message").read_text()
    assert message.startswith("features: ") and "raw.tar: not a readable tar archive" in message
    assert not (root / "processing/output/features").exists()


def test_a_member_outside_the_folder_is_refused(tmp_path):
    import tarfile

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        tar.addfile(info)
    with pytest.raises(ValueError, match="'../escaped.txt' is not a plain file or folder inside"):
        folder_tar.unpack(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_packing_is_reproducible(tiny_data, tmp_path):
    first = folder_tar.pack(tiny_data / "raw", tmp_path / "a.tar")
    os.utime(tiny_data / "raw" / "manifest.csv", (0, 12345))  # times do not count, content does
    assert folder_tar.pack(tiny_data / "raw", tmp_path / "b.tar") == first
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    (tmp_path / "copy").mkdir()
    folder_tar.unpack(tmp_path / "a.tar", tmp_path / "copy")
    assert tree(tmp_path / "copy") == tree(tiny_data / "raw")


def test_requirements_pin_what_the_job_imports():
    pins = dict(line.split("==") for line in sourcedir.requirements())
    from importlib.metadata import version

    assert pins["tensorflow"] == version("tensorflow-cpu") and "tensorflow-cpu" not in pins
    for name in ("keras", "numpy", "scipy", "soundfile", "h5py", "mlflow-skinny", "ruamel-yaml"):
        assert pins[name] == version(name), name
    assert "setuptools" not in pins and "mlflow" not in pins
