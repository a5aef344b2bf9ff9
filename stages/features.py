"""features stage: data/raw -> data/features/{train,val,test}.npz + spec.json.

backend.features picks where it runs: here, or in a SageMaker processing job
running the same code (keyspot/sagemaker_jobs/processing.py); the outputs
are the same files either way.
"""

from pathlib import Path

from keyspot import params, stage
from keyspot.features import extract


def run():
    p = params.load()
    if p.backend.features == "sagemaker":
        from keyspot.sagemaker_jobs import processing  # boto3 only when it is used

        counts = processing.run(p, Path("data/raw"), Path("data/features"))
    else:
        counts = extract.run(p, Path("data/raw"), Path("data/features"))
    print("features: " + ", ".join(f"{split} {n}" for split, n in counts.items()))


if __name__ == "__main__":
    stage.main("features", run)
