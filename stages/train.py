"""train stage: data/features -> models/model.keras, models/saved_model, reports/train.

backend.train picks where it trains: here, or in a SageMaker training job
running the same code (keyspot/sagemaker_jobs/training.py); the outputs are
the same files either way.
"""

from pathlib import Path

from keyspot import params, stage, train


def run():
    p = params.load()
    if p.backend.train == "sagemaker":
        from keyspot.sagemaker_jobs import training  # boto3 only when it is used

        summary = training.run(p, Path("data/features"), Path("models"), Path("reports/train"))
    else:
        summary = train.run(p, Path("data/features"), Path("models"), Path("reports/train"))
    print(f"train: best epoch {summary['best_epoch']}, val accuracy {summary['best_val_accuracy']:.4f}, "
          f"{summary['params']} params, {summary['macs']} MACs")


if __name__ == "__main__":
    stage.main("train", run)
