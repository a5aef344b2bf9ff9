"""The stream-eval stage: the board's chain over the test streams.

The int8 model and the recognizer with the parameters the generated
firmware folder gives the board (recognizer_config.h, as calibrate chose
them) run over data/streams' test streams: the unseen speakers' (test) and
the unseen engine's (test_engine). reports/stream.json gets, per stream,
the false-reject rate overall and per keyword, false accepts per hour and
the detection latency after each keyword's end; reports/stream/ the DET
curve (false rejects against false accepts per hour across thresholds) and
every false accept with what triggered it.
"""

from __future__ import annotations

import io
from pathlib import Path

from keyspot import artifacts, streaming
from keyspot.recognizer import from_header

SPLITS = ("test", "test_engine")
DET_THRESHOLDS = range(0, 256, 5)


def run(params, model_path: Path, spec_path: Path, streams_dir: Path, generated_dir: Path,
        metrics_path: Path, out_dir: Path) -> dict:
    from keyspot.features import FeatureSpec
    from keyspot.listen import load_model

    spec = FeatureSpec.load(spec_path)
    board = from_header(generated_dir).check(len(spec.labels))
    streams = streaming.score_streams(spec, load_model(model_path, spec), board, streams_dir, SPLITS)
    metrics = {"recognizer": {"average_window_ms": board.average_window_ms,
                              "detection_threshold": board.detection_threshold,
                              "suppression_ms": board.suppression_ms, "minimum_count": board.minimum_count}}
    accepts, curves = [], {}
    for s in streams:
        outcome = streaming.match(s, s.detect(board), spec.labels)
        metrics[s.split] = streaming.summary(outcome)
        accepts += [(s.split, round(t / 1000, 2), label, heard) for t, label, heard in outcome.false_accepts]
        curves[s.split] = streaming.det_curve([s], board, spec.labels, DET_THRESHOLDS)
    with artifacts.staged_dir(out_dir) as tmp:
        for split, rows in curves.items():
            artifacts.write_text(tmp / f"det_{split}.csv", streaming.csv_text(rows))
        artifacts.write_text(tmp / "false_accepts.csv", streaming.csv_text(
            [dict(zip(("split", "time_s", "detected", "heard"), a, strict=True)) for a in accepts],
            ("split", "time_s", "detected", "heard")))
        artifacts.write_bytes(tmp / "det.png", plot_det(curves, board.detection_threshold))
    artifacts.write_json(metrics_path, metrics)
    _log(params, model_path, metrics, out_dir)
    return metrics


def plot_det(curves: dict[str, list[dict]], threshold: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for split, rows in curves.items():
        ax.plot([r["false_accepts_per_hour"] for r in rows], [100 * r["false_reject_rate"] for r in rows],
                marker=".", label=split)
        at = min(rows, key=lambda r: abs(r["threshold"] - threshold))
        ax.plot(at["false_accepts_per_hour"], 100 * at["false_reject_rate"], "ko")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false rejects (%)")
    ax.set_title(f"DET across thresholds (dot: the board's, {threshold}/255)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def _log(params, model_path: Path, metrics: dict, out_dir: Path) -> None:
    from keyspot import tracking

    with tracking.model_run(params, model_path, tag=tracking.INT8_HASH_TAG, stage="stream-eval") as (mlflow, _):
        for split in SPLITS:
            if split not in metrics:
                continue
            m = metrics[split]
            mlflow.log_metrics({f"stream_{split}_false_reject_rate": m["false_reject_rate"],
                                f"stream_{split}_false_accepts_per_hour": m["false_accepts_per_hour"]})
            if m["latency_ms_median"] is not None:
                mlflow.log_metric(f"stream_{split}_latency_ms_median", m["latency_ms_median"])
        for name in sorted(p.name for p in Path(out_dir).iterdir()):
            mlflow.log_artifact(str(Path(out_dir) / name), "stream")
