"""Stage sagemaker-deploy: package the SavedModel for SageMaker, deploy if enabled.

Always writes models/sagemaker/model.tar.gz and reports/deploy.json. Only
with deploy.enabled=true does it talk to AWS: upload, SageMaker model,
endpoint configuration, endpoint created or updated (or left alone when
nothing changed), a smoke test (keyspot/deploy/sagemaker.py). A failed
deploy exits 2 with the reason and leaves the previous reports/deploy.json.
"""

from __future__ import annotations

from pathlib import Path

from keyspot import artifacts, params, stage
from keyspot.deploy import package
from keyspot.features import FeatureSpec

SAVED_MODEL = Path("models/saved_model")
SPEC = Path("data/features/spec.json")
TARBALL = Path("models/sagemaker/model.tar.gz")
REPORT = Path("reports/deploy.json")


def run() -> None:
    p = params.load()
    if p.deploy.enabled:
        # Imported only here: a disabled deploy never loads boto3 at all.
        from keyspot.deploy import sagemaker

        sagemaker.check_config(p.deploy)
    sha256 = package.build(SAVED_MODEL, SPEC, TARBALL)
    report = {"enabled": p.deploy.enabled, "model_data": TARBALL.as_posix(),
              "sha256": sha256, "endpoint": None}
    if p.deploy.enabled:
        endpoint = sagemaker.deploy(TARBALL, sha256, p.deploy, FeatureSpec.load(SPEC))
        report["model_data"] = endpoint["model_data"]
        report["endpoint"] = endpoint
    artifacts.write_json(REPORT, report)


if __name__ == "__main__":
    stage.main("sagemaker-deploy", run)
