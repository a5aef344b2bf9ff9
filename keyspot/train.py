"""Training: features -> a Keras model, seeded and deterministic.

The best epoch on the validation split is kept. Outputs are written only
when training completes, each atomically, so a killed run leaves the
previous models in place and the next run starts cleanly.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from keyspot import artifacts, keras_files
from keyspot.features import FeatureSpec


def load_split(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    path = Path(features_dir) / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["x"][..., None], data["y"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; run `dvc repro features`") from None


def make_deterministic(seed: int) -> None:
    """Same seed, same weights: seeded RNGs and deterministic TF kernels."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def class_weights(y: np.ndarray, num_labels: int) -> dict[int, float]:
    """Inverse-frequency weights so that rare classes count as much as common ones."""
    counts = np.bincount(y, minlength=num_labels).astype(np.float64)
    weights = len(y) / (num_labels * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}


def _history_csv(history: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def run(params, features_dir: Path, models_dir: Path, reports_dir: Path) -> dict:
    make_deterministic(params.seed)
    import keras

    from keyspot import models, tracking

    spec = FeatureSpec.load(Path(features_dir) / "spec.json")
    x_train, y_train = load_split(features_dir, "train")
    x_val, y_val = load_split(features_dir, "val")
    num_labels = len(spec.labels)

    model = models.build(params.model, spec.shape, num_labels)
    steps = int(np.ceil(len(x_train) / params.train.batch_size)) * params.train.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        params.train.lr, decay_steps=steps, alpha=params.train.lr_min / params.train.lr)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.train.label_smoothing),
                  metrics=["accuracy"])

    history: list[dict] = []
    best = {"val_accuracy": -1.0, "weights": None, "epoch": 0}

    with tracking.train_run(params) as (mlflow, run):
        class Track(keras.callbacks.Callback):
            """Per-epoch metrics to MLflow and the history; keeps the best weights."""

            def on_epoch_end(self, epoch, logs=None):
                row = {"epoch": epoch + 1, **{k: float(v) for k, v in sorted(logs.items())}}
                history.append(row)
                mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
                if row["val_accuracy"] > best["val_accuracy"]:
                    best.update(val_accuracy=row["val_accuracy"], epoch=epoch + 1,
                                weights=[w.copy() for w in self.model.get_weights()])

        model.fit(x_train, keras.utils.to_categorical(y_train, num_labels),
                  validation_data=(x_val, keras.utils.to_categorical(y_val, num_labels)),
                  epochs=params.train.epochs, batch_size=params.train.batch_size,
                  class_weight=class_weights(y_train, num_labels), shuffle=True,
                  callbacks=[Track()], verbose=2)
        model.set_weights(best["weights"])

        models_dir, reports_dir = Path(models_dir), Path(reports_dir)
        models_dir.mkdir(parents=True, exist_ok=True)
        keras_path = models_dir / "model.keras"
        keras_files.save_keras(model, keras_path)
        keras_files.export_saved_model(model, models_dir / "saved_model")

        summary = {"best_epoch": best["epoch"], "best_val_accuracy": round(best["val_accuracy"], 6),
                   "params": int(model.count_params()), "macs": models.count_macs(model),
                   "train_examples": int(len(x_train)), "val_examples": int(len(x_val))}
        with artifacts.staged_dir(reports_dir) as tmp:
            artifacts.write_text(tmp / "history.csv", _history_csv(history))
            artifacts.write_json(tmp / "summary.json", summary)

        mlflow.set_tag(tracking.MODEL_HASH_TAG, tracking.file_sha256(keras_path))
        mlflow.log_metrics({"best_val_accuracy": best["val_accuracy"],
                            "model_params": summary["params"], "model_macs": summary["macs"]})
        mlflow.log_artifact(str(keras_path), "model")
        mlflow.log_artifact(str(reports_dir / "history.csv"), "train")
    return summary
