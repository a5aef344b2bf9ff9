"""The SageMaker container contract, as keyspot's entry points see it.

Training job (the SageMaker training toolkit runs keyspot_train.py):

    /opt/ml/input/config/hyperparameters.json  SM_INPUT_CONFIG_DIR; values are JSON-encoded strings
    /opt/ml/input/data/<channel>/              SM_CHANNEL_<CHANNEL>, else SM_INPUT_DIR/data/<channel>
    /opt/ml/model/                             SM_MODEL_DIR; SageMaker uploads it as model.tar.gz
    /opt/ml/output/data/                       SM_OUTPUT_DATA_DIR; uploaded as output.tar.gz
    /opt/ml/output/failure                     SM_OUTPUT_DIR; its text becomes FailureReason
    /opt/ml/checkpoints/                       CheckpointConfig.LocalPath, passed as the
                                               hyperparameter `checkpoint_dir`; kept in S3

Processing job (no SM_* variables of its own; KEYSPOT_OPT_ML, default
/opt/ml, moves the whole tree, for tests):

    /opt/ml/processing/input/<name>/           each ProcessingInput's LocalPath
    /opt/ml/processing/output/                 the ProcessingOutput's LocalPath, uploaded at the end
    /opt/ml/output/message                     its text becomes ExitMessage

An input channel holds either one `<channel>.tar` (folder_tar.pack) or the
files themselves. Nothing heavy is imported here: the entry points read their
inputs before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from keyspot.sagemaker_jobs import folder_tar

OPT_ML = "/opt/ml"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
# SageMaker keeps the first 1024 characters of the failure file or message.
REASON_CHARS = 1024


@dataclasses.dataclass(frozen=True)
class TrainingPaths:
    input_dir: Path
    config_dir: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    env: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TrainingPaths:
        input_dir = Path(env.get("SM_INPUT_DIR", f"{OPT_ML}/input"))
        output_dir = Path(env.get("SM_OUTPUT_DIR", f"{OPT_ML}/output"))
        return cls(input_dir=input_dir,
                   config_dir=Path(env.get("SM_INPUT_CONFIG_DIR", input_dir / "config")),
                   model_dir=Path(env.get("SM_MODEL_DIR", f"{OPT_ML}/model")),
                   output_dir=output_dir,
                   output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", output_dir / "data")),
                   env=dict(env))

    def channel(self, name: str) -> Path:
        return Path(self.env.get(f"SM_CHANNEL_{name.upper()}", self.input_dir / "data" / name))

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    def hyperparameters(self) -> dict:
        """hyperparameters.json, each value decoded from JSON where it is JSON (as the toolkit does)."""
        path = self.config_dir / "hyperparameters.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as err:
            raise ValueError(f"{path}: not JSON ({err})") from None
        decoded = {}
        for key, value in raw.items():
            try:
                decoded[key] = json.loads(value)
            except (TypeError, ValueError):
                decoded[key] = value
        return decoded


@dataclasses.dataclass(frozen=True)
class ProcessingPaths:
    input_dir: Path
    output_dir: Path
    message_file: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ProcessingPaths:
        root = Path(env.get("KEYSPOT_OPT_ML", OPT_ML))
        return cls(input_dir=root / "processing" / "input", output_dir=root / "processing" / "output",
                   message_file=root / "output" / "message")


def work_dir(volume: Path) -> Path:
    """A scratch folder on the job's storage volume (sized by sagemaker.volume_gb),
    not on the container's small root disk."""
    try:
        folder = volume / "keyspot-work"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        return Path(tempfile.mkdtemp(prefix="keyspot-work-"))


def input_folder(channel: Path, name: str, work: Path) -> Path:
    """The folder an input channel carries: its `<name>.tar` unpacked into `work`, or the channel itself."""
    if not channel.is_dir():
        raise FileNotFoundError(f"input {name!r}: {channel} is missing; the job needs it as a channel")
    archive = channel / f"{name}.tar"
    if archive.is_file():
        return folder_tar.unpack(archive, work / name)
    return channel


def write_reason(path: Path, message: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message[:REASON_CHARS], encoding="utf-8")
    except OSError as err:  # the reason still reaches the logs
        print(f"could not write {path}: {err}", file=sys.stderr)


def run(name: str, body: Callable[[], None], reason_file: Path) -> int:
    """Run an entry point's body; on any failure write why to `reason_file`
    (SageMaker shows it as the job's FailureReason or ExitMessage) and return 1."""
    from keyspot.stage import EXPECTED

    try:
        body()
        return 0
    except EXPECTED as err:
        reason = str(err)
    except Exception as err:  # a bug: keep the traceback in the logs
        traceback.print_exc()
        reason = f"{type(err).__name__}: {err}"
    print(f"{name}: error: {reason}", file=sys.stderr, flush=True)
    write_reason(reason_file, f"{name}: {reason}")
    return 1
