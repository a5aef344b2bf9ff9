"""The `sagemaker` params, checked before anything is uploaded, and what follows from them.

The execution role is `sagemaker.role_arn`, else the KEYSPOT_SAGEMAKER_ROLE
environment variable (the one the endpoint deploy reads). Everything lives
under s3://<bucket>/<prefix>/:

    inputs/<sha256>/<name>.tar           an input folder, named by its content
    inputs/<sha256>/params.yaml          the params of a run, likewise
    code/<sha256>/sourcedir.tar.gz       keyspot's source and pinned requirements
    jobs/<job name>/...                  what each job wrote
    checkpoints/<training>/              the training state, one folder per
                                         training (params, inputs and code)
"""

from __future__ import annotations

import dataclasses
import re

from keyspot.deploy import sagemaker as deploy_sagemaker
from keyspot.deploy.sagemaker import ROLE_ENV  # noqa: F401  (tests and docs refer to it here)
from keyspot.sagemaker_jobs import JobError

BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
MAX_RUNTIME_S = 28 * 24 * 3600  # SageMaker's limit for a training job


@dataclasses.dataclass(frozen=True)
class Settings:
    """Checked settings of one job."""
    cfg: object          # keyspot.params.SageMakerJobs
    role: str
    image: str

    def uri(self, *parts: str) -> str:
        return f"s3://{self.cfg.bucket}/{self.key(*parts)}"

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.cfg.prefix, *parts) if p.strip("/"))

    def tags(self, stage: str) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in {**self.cfg.tags, "keyspot:stage": stage}.items()]


def role_arn(cfg) -> str:
    return deploy_sagemaker.role_arn(cfg, group="sagemaker", error=JobError)


def image_uri(cfg) -> str:
    """sagemaker.image, else the AWS TensorFlow training image for the version, region and instance."""
    if cfg.image:
        return cfg.image
    try:
        from sagemaker.core import image_uris  # sagemaker >= 3
    except ImportError:  # sagemaker 2.x
        from sagemaker import image_uris
    try:
        return image_uris.retrieve("tensorflow", cfg.region, version=cfg.framework_version,
                                   instance_type=cfg.instance_type, image_scope="training")
    except ValueError as err:
        raise JobError(f"sagemaker.framework_version / sagemaker.region: no TensorFlow training image for "
                       f"{cfg.framework_version!r} in {cfg.region!r} ({err}); or set sagemaker.image") from None


def check(cfg, *, spot: bool) -> Settings:
    """Fail early, naming the key; `spot` says whether the job could use managed spot."""
    if not cfg.bucket:
        raise JobError("sagemaker.bucket is empty; set it to an S3 bucket you own, e.g. "
                       "`dvc exp run -S sagemaker.bucket=my-bucket`, or use the local backend")
    if not BUCKET.fullmatch(cfg.bucket):
        raise JobError(f"sagemaker.bucket: {cfg.bucket!r} is not an S3 bucket name")
    if not cfg.region:
        raise JobError("sagemaker.region is empty; set it to the AWS region of the bucket, e.g. us-east-1")
    if not cfg.instance_type.startswith("ml."):
        raise JobError(f"sagemaker.instance_type: {cfg.instance_type!r} is not a SageMaker instance type (ml.*)")
    if cfg.instance_count != 1:
        raise JobError(f"sagemaker.instance_count: {cfg.instance_count}; keyspot trains and extracts on one "
                       "instance (more would repeat the same work), so it must be 1")
    if not 1 <= cfg.volume_gb <= 16384:
        raise JobError(f"sagemaker.volume_gb: {cfg.volume_gb}; from 1 to 16384")
    if not 1 <= cfg.max_runtime_s <= MAX_RUNTIME_S:
        raise JobError(f"sagemaker.max_runtime_s: {cfg.max_runtime_s}; from 1 to {MAX_RUNTIME_S} (28 days)")
    if spot and cfg.spot.enabled and cfg.spot.max_wait_s < cfg.max_runtime_s:
        raise JobError(f"sagemaker.spot.max_wait_s: {cfg.spot.max_wait_s} is below sagemaker.max_runtime_s "
                       f"({cfg.max_runtime_s}); it counts the waiting for spot capacity and the run together")
    if cfg.poll_s < 1:
        raise JobError("sagemaker.poll_s: must be at least 1")
    for key, value in cfg.tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256 or key.lower().startswith("aws:"):
            raise JobError(f"sagemaker.tags.{key}: tag keys are 1-128 characters, not starting with aws:, "
                           "values at most 256")
    return Settings(cfg=cfg, role=role_arn(cfg), image=image_uri(cfg))
