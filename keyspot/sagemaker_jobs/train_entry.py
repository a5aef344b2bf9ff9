"""The SageMaker training job's entry point: keyspot.train.run under the container contract.

SageMaker's training toolkit unpacks the sourcedir into /opt/ml/code, installs
its requirements.txt and runs keyspot_train.py, which calls main() (see
contract.py for the paths and the SM_* variables that move them).

Inputs:
    channel params     params.yaml, the params the stage read. A file, not
                       hyperparameters: it is several kilobytes, and SageMaker
                       takes at most 2,500 characters per hyperparameter value
    channel features   features.tar: data/features
    channel raw        raw.tar: data/raw, whose training clips are augmented
                       afresh every epoch (only when train.augment.prob > 0)
    hyperparameter checkpoint_dir
                       CheckpointConfig.LocalPath: the training state after
                       each epoch; a restarted (spot-interrupted) job resumes
                       from it and gives the same bytes
Outputs:
    SM_MODEL_DIR         model.keras, saved_model/  (model.tar.gz)
    SM_OUTPUT_DATA_DIR   train/history.csv, train/summary.json  (output.tar.gz)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from keyspot.sagemaker_jobs import contract


def main(env=os.environ) -> int:
    paths = contract.TrainingPaths.from_env(env)

    def body() -> None:
        from keyspot import params as params_mod

        hyperparameters = paths.hyperparameters()
        work = contract.work_dir(paths.input_dir)
        params = params_mod.load(contract.input_folder(paths.channel("params"), "params", work) / "params.yaml")
        features = contract.input_folder(paths.channel("features"), "features", work)
        raw = paths.channel("raw")
        raw = contract.input_folder(raw, "raw", work) if raw.exists() else work / "raw"
        checkpoint_dir = hyperparameters.get("checkpoint_dir")
        # The job's own MLflow run is scratch: the stage that started the job
        # logs the run that counts, from the history this job writes.
        os.environ["MLFLOW_TRACKING_URI"] = (work / "mlruns").resolve().as_uri()
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from keyspot import train

        summary = train.run(params, features, paths.model_dir, paths.output_data_dir / "train", raw_dir=raw,
                            checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None)
        print(f"train: best epoch {summary['best_epoch']}, val accuracy {summary['best_val_accuracy']:.4f}",
              flush=True)

    return contract.run("train", body, paths.failure_file)


if __name__ == "__main__":
    sys.exit(main())
