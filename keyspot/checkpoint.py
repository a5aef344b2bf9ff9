"""Resumable training: the whole training state after each epoch, in one file.

Used where a training can be stopped from outside and restarted (SageMaker
managed spot training keeps /opt/ml/checkpoints in S3). The state holds the
model weights, the optimizer's variables (moments, iteration count), the
best epoch's weights and the history; dropout masks and augmentations are
keyed by (seed, epoch), so a resumed run gives the same bytes as one that
never stopped. A checkpoint from other params or other data is ignored.
"""

from __future__ import annotations

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


def save(folder: Path, key: str, model, best: dict, history: list[dict], epoch: int) -> None:
    arrays = {f"weight_{i:04d}": w for i, w in enumerate(model.get_weights())}
    arrays |= {f"optimizer_{i:04d}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)}
    arrays |= {f"best_{i:04d}": w for i, w in enumerate(best["weights"])}
    meta = {"key": key, "epoch": epoch, "history": history,
            "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    artifacts.write_bytes(Path(folder) / FILE, buffer.getvalue())


def restore(folder: Path | None, key: str, model) -> tuple[int, dict, list[dict]] | None:
    """Load the state into `model` (compiled); return (epoch, best, history),
    or None when there is no checkpoint of this training."""
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
    best = {"epoch": meta["best_epoch"], "val_accuracy": meta["best_val_accuracy"], "weights": best_weights}
    print(f"checkpoint: resuming after epoch {meta['epoch']}", flush=True)
    return meta["epoch"], best, meta["history"]


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
