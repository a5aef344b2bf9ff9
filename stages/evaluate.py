"""evaluate stage: models/model.keras, models/model_int8.tflite + test features
(and data/raw/manifest.csv for each clip's speaker) -> reports/metrics.json, reports/eval."""

from pathlib import Path

from keyspot import evaluate, params, stage


def run():
    metrics = evaluate.run(params.load(), Path("models/model.keras"), Path("data/features"),
                           Path("reports/metrics.json"), Path("reports/eval"), Path("models/model_int8.tflite"),
                           Path("data/raw"))
    for split in evaluate.SPLITS:
        if split in metrics:
            m = metrics[split]
            print(f"evaluate: {split} accuracy {m['accuracy']:.4f} float, {m['int8_accuracy']:.4f} int8 "
                  f"on {m['examples']} clips")
    q = metrics["quiet"]
    print(f"evaluate: quiet labelled a keyword {q['keyword_rate']:.4f} float, {q['int8_keyword_rate']:.4f} int8 "
          f"of {q['examples']} clips")


if __name__ == "__main__":
    stage.main("evaluate", run)
