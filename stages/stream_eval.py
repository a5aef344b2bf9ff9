"""stream-eval stage: models/model_int8.tflite + data/streams + the generated
recognizer_config.h -> reports/stream.json, reports/stream/ (DET curves,
false accepts)."""

from pathlib import Path

from keyspot import params, stage, stream_eval


def run():
    p = params.load()
    metrics = stream_eval.run(p, Path("models/model_int8.tflite"), Path("data/features/spec.json"),
                              Path("data/streams"), Path(p.export.out_dir), Path("reports/stream.json"),
                              Path("reports/stream"))
    for split in stream_eval.SPLITS:
        if split in metrics:
            m = metrics[split]
            print(f"stream-eval: {split}: {m['minutes']:.0f} min, {m['keywords']} keywords: "
                  f"{m['false_reject_rate']:.1%} false rejects, {m['false_accepts']} false accepts "
                  f"({m['false_accepts_per_hour']:.1f} per hour), median latency {m['latency_ms_median']} ms")


if __name__ == "__main__":
    stage.main("stream-eval", run)
