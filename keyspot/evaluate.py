"""Evaluation of the float model on the test split.

Writes the DVC metrics file, the per-sample predictions DVC's `confusion`
plot template reads, a per-class table and a confusion-matrix PNG, and logs
them to the model's MLflow run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from keyspot import artifacts, features
from keyspot.features import FeatureSpec


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class(matrix: np.ndarray, labels) -> list[dict]:
    """Precision, recall and F1 of each class from a confusion matrix
    (rows: true class, columns: predicted class)."""
    rows = []
    for i, label in enumerate(labels):
        tp = matrix[i, i]
        predicted, actual = matrix[:, i].sum(), matrix[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"label": label, "support": int(actual), "precision": round(float(precision), 4),
                     "recall": round(float(recall), 4), "f1": round(float(f1), 4)})
    return rows


def plot_confusion(matrix: np.ndarray, labels, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 1.0 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    out = io.BytesIO()
    # No metadata: the PNG bytes then depend on the matrix alone.
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def _table_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def run(params, model_path: Path, features_dir: Path, metrics_path: Path, eval_dir: Path) -> dict:
    import keras

    from keyspot import models, tracking

    spec = FeatureSpec.load(Path(features_dir) / "spec.json")
    x, y = features.load_split(features_dir, "test")
    model = keras.models.load_model(model_path)
    probabilities = model.predict(x, batch_size=256, verbose=0)
    predicted = probabilities.argmax(axis=1)
    labels = spec.labels
    matrix = confusion_matrix(y, predicted, len(labels))
    table = per_class(matrix, labels)
    accuracy = float((predicted == y).mean())
    metrics = {
        "test": {
            "accuracy": round(accuracy, 6),
            "macro_f1": round(float(np.mean([r["f1"] for r in table])), 6),
            "examples": int(len(y)),
        },
        "model": {"params": int(model.count_params()), "macs": models.count_macs(model)},
    }

    eval_dir = Path(eval_dir)
    with artifacts.staged_dir(eval_dir) as tmp:
        predictions = [{"actual": labels[a], "predicted": labels[p]} for a, p in zip(y, predicted, strict=True)]
        artifacts.write_text(tmp / "predictions.csv", _table_csv(predictions))
        artifacts.write_text(tmp / "per_class.csv", _table_csv(table))
        artifacts.write_bytes(tmp / "confusion.png",
                              plot_confusion(matrix, labels, f"test accuracy {accuracy:.3f}"))
    artifacts.write_json(metrics_path, metrics)

    with tracking.model_run(params, model_path) as (mlflow, _):
        mlflow.log_metrics({"test_accuracy": accuracy, "test_macro_f1": metrics["test"]["macro_f1"]})
        for row in table:
            mlflow.log_metric(f"test_f1_{row['label']}", row["f1"])
        mlflow.log_artifact(str(eval_dir / "confusion.png"), "evaluate")
        mlflow.log_artifact(str(eval_dir / "per_class.csv"), "evaluate")
    return metrics
