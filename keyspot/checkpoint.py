"""Resumable training: the whole training state after each epoch, in one file.

Used where a training can be stopped from outside and restarted (SageMaker
managed spot training keeps /opt/ml/checkpoints in S3). The state holds the
model weights, the optimizer's variables (moments, iteration count), the
best epoch's weights and the history; dropout masks and augmentations are
keyed by (seed, epoch), so a resumed run gives the same bytes as one that
never stopped. A checkpoint from other params or other data is ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from keyspot import artifacts

FILE = "training_state.npz"


def fingerprint(params, *files: Path) -> str:
    """Identity of a training: its params and the bytes of its inputs."""
    from keyspot.params import flatten

    digest = hashlib.sha256(json.dumps(flatten(params), sort_keys=True, default=str).encode())
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class TrainingState:
    """What a training has learnt so far, besides the model's own weights and
    optimizer: every epoch's metrics, and the best epoch on validation with
    its weights. keyspot.train updates it after each epoch; `save` and
    `restore` carry it across a restart."""
    history: list[dict] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    best_weights: list[np.ndarray] | None = None

    @property
    def last_epoch(self) -> int:
        return self.history[-1]["epoch"] if self.history else 0

    def record(self, row: dict, model) -> bool:
        """Add an epoch's metrics; keep the model's weights if it is the best
        so far. Whether it is."""
        self.history.append(row)
        improved = row["val_accuracy"] > self.best_val_accuracy
        if improved:
            self.best_epoch, self.best_val_accuracy = row["epoch"], row["val_accuracy"]
            self.best_weights = [w.copy() for w in model.get_weights()]
        return improved

    def stopped_early(self, patience: int) -> bool:
        """`patience` epochs (0: never) have gone by without a better one."""
        return bool(patience and self.history and self.last_epoch - self.best_epoch >= patience)


def save(folder: Path, key: str, model, state: TrainingState) -> None:
    arrays = {f"weight_{i:04d}": w for i, w in enumerate(model.get_weights())}
    arrays |= {f"optimizer_{i:04d}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)}
    arrays |= {f"best_{i:04d}": w for i, w in enumerate(state.best_weights)}
    meta = {"key": key, "epoch": state.last_epoch, "history": state.history,
            "best_epoch": state.best_epoch, "best_val_accuracy": state.best_val_accuracy}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    artifacts.write_bytes(Path(folder) / FILE, buffer.getvalue())


def restore(folder: Path | None, key: str, model) -> TrainingState | None:
    """Load the saved weights and optimizer into `model` (compiled) and return
    the training state, or None when there is no checkpoint of this training."""
    if folder is None or not (Path(folder) / FILE).is_file():
        return None
    with np.load(Path(folder) / FILE, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes())
        if meta["key"] != key:
            print(f"checkpoint: {Path(folder) / FILE} is from another training; starting afresh", flush=True)
            return None
        names = sorted(data.files)
        weights = [data[n] for n in names if n.startswith("weight_")]
        optimizer = [data[n] for n in names if n.startswith("optimizer_")]
        best_weights = [data[n] for n in names if n.startswith("best_")]
    model.set_weights(weights)
    model.optimizer.build(model.trainable_variables)
    for variable, value in zip(model.optimizer.variables, optimizer, strict=True):
        variable.assign(value)
    print(f"checkpoint: resuming after epoch {meta['epoch']}", flush=True)
    return TrainingState(meta["history"], meta["best_epoch"], meta["best_val_accuracy"], best_weights)


def reseed_dropout(model, seed: int, epoch: int) -> None:
    """Key every dropout layer's random state by (seed, epoch, layer), so an
    epoch's masks do not depend on the epochs before it."""
    for i, layer in enumerate(model._flatten_layers()):
        generator = getattr(layer, "seed_generator", None)
        if generator is None:
            continue
        digest = hashlib.sha256(repr((seed, epoch, i)).encode()).digest()
        state = np.frombuffer(digest[:8], dtype=np.uint32).astype(generator.state.dtype)
        generator.state.assign(state)
