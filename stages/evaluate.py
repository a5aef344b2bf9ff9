"""evaluate stage: models/model.keras + test features -> reports/metrics.json, reports/eval."""

from pathlib import Path

from keyspot import evaluate, params, stage


def run():
    metrics = evaluate.run(params.load(), Path("models/model.keras"), Path("data/features"),
                           Path("reports/metrics.json"), Path("reports/eval"))
    print(f"evaluate: test accuracy {metrics['test']['accuracy']:.4f} on {metrics['test']['examples']} clips")


if __name__ == "__main__":
    stage.main("evaluate", run)
