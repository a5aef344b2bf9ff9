"""train stage: data/features -> models/model.keras, models/saved_model, reports/train."""

from pathlib import Path

from keyspot import params, stage, train


def run():
    summary = train.run(params.load(), Path("data/features"), Path("models"), Path("reports/train"))
    print(f"train: best epoch {summary['best_epoch']}, val accuracy {summary['best_val_accuracy']:.4f}, "
          f"{summary['params']} params, {summary['macs']} MACs")


if __name__ == "__main__":
    stage.main("train", run)
