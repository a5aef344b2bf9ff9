"""Evaluation of the float and the int8 model on the test splits and on quiet.

- test: speakers never heard in training, of the training engines;
- test_engine (when the dataset holds one out): a speech engine never heard
  in training or validation, the better guess of accuracy on real voices;
- quiet: what a microphone hears when nobody speaks (keyspot.data.quiet),
  rendered here with a seed of its own; any keyword there is a false alarm.

Writes the DVC metrics file (accuracy and per-class recall, float and int8,
for each split; the rate of keywords on quiet, per kind), the per-clip
predictions (path, speaker, each model's top label and probability: what
DVC's `confusion` plot counts and `keyspot errors` lists), per-class tables
and confusion-matrix PNGs, and logs them to the model's MLflow run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from keyspot import artifacts, cpu, features, keras_files
from keyspot.data import quiet
from keyspot.data.manifest import HELD_OUT_ENGINE
from keyspot.features import FeatureSpec
from keyspot.labels import SILENCE, UNKNOWN

SPLITS = ("test", HELD_OUT_ENGINE)
QUIET_PER_KIND = 24
QUIET_DBFS_RANGE = (-80.0, -30.0)


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


def quiet_clips(spec: FeatureSpec, seed: int, per_kind: int = QUIET_PER_KIND) -> tuple[np.ndarray, list[str]]:
    """int16 clips of every kind of quiet, and their kinds; the same seed gives the same clips."""
    clips, kinds = [], []
    for k, kind in enumerate(quiet.KINDS):
        for i in range(per_kind):
            # Apart from the dataset's own draws (which hash strings): never a training clip.
            rng = np.random.default_rng([seed, 0x9E7, k, i])
            clips.append(quiet.render(kind, rng, spec.clip_samples, spec.sample_rate, QUIET_DBFS_RANGE))
            kinds.append(kind)
    pcm = np.clip(np.round(np.stack(clips) * 32768.0), -32768, 32767).astype(np.int16)
    return pcm, kinds


def split_metrics(y: np.ndarray, floats: np.ndarray, int8: np.ndarray | None, labels) -> tuple[dict, list[dict]]:
    """A split's entry in metrics.json and its per-class table (float, and
    int8 in columns of its own)."""
    matrix = confusion_matrix(y, floats, len(labels))
    table = per_class(matrix, labels)
    if int8 is not None:
        for row, row8 in zip(table, per_class(confusion_matrix(y, int8, len(labels)), labels), strict=True):
            row.update({f"int8_{key}": row8[key] for key in ("precision", "recall", "f1")})
    entry = {"accuracy": round(float((floats == y).mean()), 6),
             "macro_f1": round(float(np.mean([r["f1"] for r in table])), 6),
             "examples": int(len(y))}
    if int8 is not None:
        entry["int8_accuracy"] = round(float((int8 == y).mean()), 6)
    recall = {}
    for i, label in enumerate(labels):
        mine = y == i
        if mine.any():
            recall[label] = {"float": round(float((floats[mine] == i).mean()), 4)}
            if int8 is not None:
                recall[label]["int8"] = round(float((int8[mine] == i).mean()), 4)
    entry["recall"] = recall
    return entry, table


def quiet_metrics(kinds: list[str], floats: np.ndarray, int8: np.ndarray | None, labels) -> dict:
    """The rate of quiet clips labelled a keyword, overall and per kind."""
    keyword = np.array([label not in (SILENCE, UNKNOWN) for label in labels])
    kinds = np.array(kinds)
    entry = {"examples": int(len(kinds)), "keyword_rate": round(float(keyword[floats].mean()), 6)}
    if int8 is not None:
        entry["int8_keyword_rate"] = round(float(keyword[int8].mean()), 6)
    per_kind = {}
    for kind in dict.fromkeys(kinds):
        mine = kinds == kind
        per_kind[str(kind)] = {"float": round(float(keyword[floats[mine]].mean()), 4)}
        if int8 is not None:
            per_kind[str(kind)]["int8"] = round(float(keyword[int8[mine]].mean()), 4)
    entry["per_kind"] = per_kind
    return entry


def prediction_rows(paths, speakers: dict[str, str], y: np.ndarray, floats: np.ndarray,
                    int8: np.ndarray | None, labels) -> list[dict]:
    """One row per clip: where it is (relative to data/raw), who said it, its
    label, and each model's top label with that label's probability; the
    rows `keyspot errors` lists and DVC's confusion plot counts."""
    rows = []
    for i, (path, actual) in enumerate(zip(paths, y, strict=True)):
        top = int(floats[i].argmax())
        row = {"path": str(path), "speaker": speakers.get(str(path), ""), "actual": labels[actual],
               "predicted": labels[top], "probability": round(float(floats[i].max()), 4),
               # the labels' places in the model's output: the confusion plot's order
               "actual_id": int(actual), "predicted_id": top}
        if int8 is not None:
            row.update({"int8_predicted": labels[int(int8[i].argmax())],
                        "int8_probability": round(float(int8[i].max()), 4)})
        rows.append(row)
    return rows


def _speakers(raw_dir: Path | None) -> dict[str, str]:
    """Each clip's speaker, by its path in data/raw/manifest.csv."""
    if raw_dir is None:
        return {}
    from keyspot.data.manifest import read_manifest

    return {row.path: row.speaker for row in read_manifest(Path(raw_dir) / "manifest.csv", check_files=False)}


def run(params, model_path: Path, features_dir: Path, metrics_path: Path, eval_dir: Path,
        int8_path: Path | None = None, raw_dir: Path | None = None) -> dict:
    cpu.pin_kernels()   # before the model's first matrix product

    from keyspot import models, tracking
    from keyspot.tflite_runner import ReferenceRunners

    features_dir = Path(features_dir)
    spec = FeatureSpec.load(features_dir / "spec.json")
    model = keras_files.load_model(model_path)
    int8 = ReferenceRunners(Path(int8_path).read_bytes()) if int8_path else None
    labels = spec.labels

    def probabilities(x):
        """Float and int8 probabilities (int8: dequantised outputs)."""
        return model.predict(x, batch_size=256, verbose=0), (int8(x) if int8 is not None else None)

    def top(p):
        return None if p is None else p.argmax(axis=1)

    speakers = _speakers(raw_dir)
    metrics, tables, predictions = {}, {}, {}
    for split in SPLITS:
        if split != "test" and not (features_dir / f"{split}.npz").exists():
            continue   # the dataset holds no engine out
        x, y = features.load_split(features_dir, split)
        floats, quantized = probabilities(x)
        metrics[split], tables[split] = split_metrics(y, top(floats), top(quantized), labels)
        predictions[split] = prediction_rows(features.load_paths(features_dir, split), speakers, y, floats,
                                             quantized, labels)
    pcm, kinds = quiet_clips(spec, params.seed)
    floats, quantized = probabilities(features.compute(pcm, spec)[..., None])
    metrics["quiet"] = quiet_metrics(kinds, top(floats), top(quantized), labels)
    metrics["model"] = {"params": int(model.count_params()), "macs": models.count_macs(model)}

    eval_dir = Path(eval_dir)
    with artifacts.staged_dir(eval_dir) as tmp:
        for split, rows in predictions.items():
            # test keeps its plain names: DVC's confusion plot reads predictions.csv.
            prefix = "" if split == "test" else f"{split}_"
            artifacts.write_text(tmp / f"{prefix}predictions.csv", _table_csv(rows))
            artifacts.write_text(tmp / f"{prefix}per_class.csv", _table_csv(tables[split]))
            matrix = confusion_matrix(np.array([r["actual_id"] for r in rows], dtype=np.int64),
                                      np.array([r["predicted_id"] for r in rows], dtype=np.int64), len(labels))
            artifacts.write_bytes(tmp / f"{prefix}confusion.png", plot_confusion(
                matrix, labels, f"{split} accuracy {metrics[split]['accuracy']:.3f}"))
    artifacts.write_json(metrics_path, metrics)

    with tracking.model_run(params, model_path) as (mlflow, _):
        for split in predictions:
            entry = metrics[split]
            mlflow.log_metrics({f"{split}_accuracy": entry["accuracy"], f"{split}_macro_f1": entry["macro_f1"],
                                **({f"{split}_int8_accuracy": entry["int8_accuracy"]} if int8 else {})})
            for row in tables[split]:
                mlflow.log_metric(f"{split}_f1_{row['label']}", row["f1"])
        mlflow.log_metric("quiet_keyword_rate", metrics["quiet"]["keyword_rate"])
        for name in sorted(p.name for p in eval_dir.iterdir()):
            mlflow.log_artifact(str(eval_dir / name), "evaluate")
    return metrics
