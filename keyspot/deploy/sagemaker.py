"""The SageMaker endpoint's lifecycle: deploy (create, update or leave alone) and delete.

`deploy` puts model.tar.gz behind the endpoint `deploy.endpoint_name`:

1. upload it to s3://<bucket>/<prefix>/<sha256>/model.tar.gz (equal bytes: once);
2. the SageMaker model `<endpoint>-<hash>` (TensorFlow Serving inference image of
   `deploy.framework_version` for the region, from the sagemaker SDK's table,
   which needs no network), the hash taken over archive, image and role;
3. the endpoint configuration `<endpoint>-<hash>` (real-time instances, or
   serverless memory and concurrency), the hash taken over model and variant;
4. the endpoint: created if missing, left alone if it already serves this
   configuration, else updated to it; then waited on until InService;
5. a smoke test: a WAV clip through InvokeEndpoint, the answer checked;
6. after a create or update, the configurations and models of earlier runs
   (named `<endpoint>-<hash>`) are deleted.

So a second run with the same model and settings changes nothing. SageMaker
keeps the previous configuration serving while an update is rolled out and
when it fails; a failed update raises DeployError with SageMaker's reason,
and nothing of the previous deployment is deleted.

The execution role is `deploy.role_arn`, else the KEYSPOT_SAGEMAKER_ROLE
environment variable; the repository leaves both empty. boto3 finds
credentials and endpoints the usual way (AWS_PROFILE, AWS_ENDPOINT_URL, ...).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import boto3
import numpy as np
import soundfile
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from keyspot import audio
from keyspot.deploy import DeployError
from keyspot.features import FeatureSpec

ROLE_ENV = "KEYSPOT_SAGEMAKER_ROLE"
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
VARIANT = "AllTraffic"
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
# Serverless endpoints run CPU images; this picks the CPU image for them.
SERVERLESS_IMAGE_INSTANCE = "ml.m5.large"
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")


def image_uri(region: str, framework_version: str, instance_type: str) -> str:
    """The AWS TensorFlow Serving inference image for this version and instance."""
    try:
        from sagemaker.core import image_uris  # sagemaker >= 3
    except ImportError:  # sagemaker 2.x
        from sagemaker import image_uris
    try:
        return image_uris.retrieve("tensorflow", region, version=framework_version,
                                   instance_type=instance_type, image_scope="inference")
    except ValueError as err:
        raise DeployError(f"deploy.framework_version / deploy.instance_type: no TensorFlow "
                          f"inference image for {framework_version!r} on {instance_type!r} "
                          f"in {region}: {err}") from None


def test_wav(spec: FeatureSpec) -> bytes:
    """A deterministic clip for the smoke test: a 440 Hz tone, half a clip long."""
    t = np.arange(spec.clip_samples // 2) / spec.sample_rate
    pcm = audio.to_int16(0.3 * np.sin(2 * np.pi * 440.0 * t))
    buf = io.BytesIO()
    soundfile.write(buf, pcm, spec.sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def resource_name(endpoint_name: str, digest: str) -> str:
    """`<endpoint>-<hash12>`, within SageMaker's 63-character name rule."""
    return f"{endpoint_name[:50].rstrip('-')}-{digest[:12]}"


def _ours(endpoint_name: str) -> re.Pattern:
    """Names of the models and endpoint configurations this endpoint's deploys create."""
    return re.compile(re.escape(endpoint_name[:50].rstrip("-")) + r"-[0-9a-f]{12}")


def _missing(err: ClientError) -> bool:
    error = err.response.get("Error", {})
    return (error.get("Code") in ("ValidationException", "ValidationError")
            and "could not find" in error.get("Message", "").lower())


def role_arn(cfg, group: str = "deploy", error: type[Exception] = DeployError) -> str:
    """The SageMaker execution role: `<group>.role_arn`, else $KEYSPOT_SAGEMAKER_ROLE;
    a missing or malformed one raises `error` naming where it came from."""
    role = (cfg.role_arn or os.environ.get(ROLE_ENV, "")).strip()
    if not role:
        raise error(f"no execution role: export {ROLE_ENV}=arn:aws:iam::<account>:role/<name> "
                    f"(a SageMaker execution role), or pass -S {group}.role_arn=... for one run")
    if not ROLE_ARN.fullmatch(role):
        where = f"{group}.role_arn" if cfg.role_arn else ROLE_ENV
        raise error(f"{where}: {role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return role


def check_config(cfg) -> str:
    """Fail early on deploy params or environment; return the execution role ARN."""
    if not cfg.bucket:
        raise DeployError("deploy.bucket is empty; set it to an S3 bucket you own, e.g. "
                          "`dvc exp run -S deploy.bucket=my-bucket`, or set deploy.enabled=false")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", cfg.endpoint_name):
        raise DeployError(f"deploy.endpoint_name: {cfg.endpoint_name!r} is not a valid SageMaker "
                          "name (letters, digits and hyphens, at most 63)")
    if cfg.serverless:
        if cfg.serverless_memory_mb not in SERVERLESS_MEMORY_MB:
            raise DeployError(f"deploy.serverless_memory_mb: {cfg.serverless_memory_mb} is not one of "
                              f"{', '.join(map(str, SERVERLESS_MEMORY_MB))}")
        if not 1 <= cfg.serverless_max_concurrency <= 200:
            raise DeployError("deploy.serverless_max_concurrency: must be from 1 to 200")
    else:
        if cfg.instance_count < 1:
            raise DeployError("deploy.instance_count: must be at least 1")
        if not cfg.instance_type.startswith("ml."):
            raise DeployError(f"deploy.instance_type: {cfg.instance_type!r} is not a SageMaker "
                              "instance type (ml.*)")
    if cfg.wait_minutes < 1:
        raise DeployError("deploy.wait_minutes: must be at least 1")
    return role_arn(cfg)


def production_variant(cfg, model_name: str) -> dict:
    variant = {"VariantName": VARIANT, "ModelName": model_name}
    if cfg.serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": cfg.serverless_memory_mb,
                                       "MaxConcurrency": cfg.serverless_max_concurrency}
    else:
        variant.update(InstanceType=cfg.instance_type, InitialInstanceCount=cfg.instance_count,
                       InitialVariantWeight=1.0)
    return variant


def check_answer(body: bytes, spec: FeatureSpec, endpoint: str) -> dict:
    """The endpoint's answer to the test clip, if it is a keyspot answer for this spec."""
    try:
        response = json.loads(body)
        (prediction,) = response["predictions"]
        label, probabilities = prediction["label"], prediction["probabilities"]
        total = sum(float(p) for p in probabilities.values())
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DeployError(f"endpoint {endpoint} answered the test clip with {body[:200]!r}, "
                          "not keyspot predictions") from None
    if sorted(probabilities) != sorted(spec.labels) or label not in spec.labels:
        raise DeployError(f"endpoint {endpoint} answered labels {sorted(probabilities)}, not the "
                          f"spec's {list(spec.labels)}: it serves another model")
    if abs(total - 1.0) > 1e-3:
        raise DeployError(f"endpoint {endpoint}: probabilities of the test clip add up to {total:.4f}, not 1")
    return response


class _Endpoint:
    """The SageMaker calls of one deploy or delete, each failure named by its step."""

    def __init__(self, cfg, session: boto3.session.Session | None, wait_delay_s: int):
        session = session or boto3.session.Session(region_name=cfg.region)
        self.cfg, self.delay = cfg, wait_delay_s
        self.attempts = max(1, cfg.wait_minutes * 60 // max(1, wait_delay_s))
        self.s3 = session.client("s3", region_name=cfg.region)
        self.sm = session.client("sagemaker", region_name=cfg.region)
        self.runtime = session.client("sagemaker-runtime", region_name=cfg.region)

    def describe(self) -> dict | None:
        try:
            return self.sm.describe_endpoint(EndpointName=self.cfg.endpoint_name)
        except ClientError as err:
            if _missing(err):
                return None
            raise

    def wait(self, waiter: str) -> None:
        try:
            self.sm.get_waiter(waiter).wait(EndpointName=self.cfg.endpoint_name,
                                            WaiterConfig={"Delay": self.delay, "MaxAttempts": self.attempts})
        except WaiterError:
            described = self.describe() or {}
            raise DeployError(f"endpoint {self.cfg.endpoint_name} is {described.get('EndpointStatus', 'gone')}"
                              f" after waiting: {described.get('FailureReason', 'no reason given')}") from None

    def ours(self) -> tuple[list[str], list[str]]:
        """(endpoint configuration names, model names) that deploys of this endpoint created."""
        pattern = _ours(self.cfg.endpoint_name)
        prefix = self.cfg.endpoint_name[:50].rstrip("-")
        found = []
        for operation, key, name_key in (("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName"),
                                         ("list_models", "Models", "ModelName")):
            names = []
            for page in self.sm.get_paginator(operation).paginate(NameContains=prefix):
                names += [item[name_key] for item in page[key] if pattern.fullmatch(item[name_key])]
            found.append(sorted(names))
        return found[0], found[1]

    def prune(self, keep_config: str, keep_model: str) -> list[tuple[str, str]]:
        configs, models = self.ours()
        deleted = []
        for name in configs:
            if name != keep_config:
                self.sm.delete_endpoint_config(EndpointConfigName=name)
                deleted.append(("endpoint configuration", name))
        for name in models:
            if name != keep_model:
                self.sm.delete_model(ModelName=name)
                deleted.append(("model", name))
        return deleted


def deploy(tarball: Path | str, sha256: str, cfg, spec: FeatureSpec, *,
           session: boto3.session.Session | None = None, wait_delay_s: int = 30) -> dict:
    """Upload, create or update the endpoint, wait, smoke-test; return a report dict.

    `cfg` is keyspot.schema.Deploy. Any AWS failure is raised as DeployError
    naming the step that failed.
    """
    role = check_config(cfg)
    name = cfg.endpoint_name
    step = "connect"
    try:
        ep = _Endpoint(cfg, session, wait_delay_s)

        step = f"upload to s3://{cfg.bucket}"
        key = "/".join(p for p in (cfg.prefix.strip("/"), sha256, "model.tar.gz") if p)
        model_data = f"s3://{cfg.bucket}/{key}"
        try:
            ep.s3.head_object(Bucket=cfg.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            ep.s3.upload_file(str(tarball), cfg.bucket, key)

        image = image_uri(cfg.region, cfg.framework_version,
                          SERVERLESS_IMAGE_INSTANCE if cfg.serverless else cfg.instance_type)
        model_name = resource_name(name, _hash(model_data, image, role))
        variant = production_variant(cfg, model_name)
        config_name = resource_name(name, _hash(model_name, variant))

        step = f"create model {model_name}"
        try:
            ep.sm.describe_model(ModelName=model_name)
        except ClientError as err:
            if not _missing(err):
                raise
            ep.sm.create_model(ModelName=model_name, ExecutionRoleArn=role,
                               PrimaryContainer={"Image": image, "ModelDataUrl": model_data})

        step = f"create endpoint configuration {config_name}"
        try:
            ep.sm.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as err:
            if not _missing(err):
                raise
            ep.sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[variant])

        step = f"create or update endpoint {name}"
        current = ep.describe()
        if current and current["EndpointStatus"] in BUSY:
            ep.wait("endpoint_in_service")  # another deploy is rolling out; decide on its result
            current = ep.describe()
        if current and current["EndpointStatus"] == "Deleting":
            ep.wait("endpoint_deleted")
            current = None
        previous = current.get("EndpointConfigName") if current else None
        if current is None:
            ep.sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
            action = "created"
        elif current["EndpointStatus"] == "Failed":
            # A failed creation cannot be updated; SageMaker wants it deleted first.
            ep.sm.delete_endpoint(EndpointName=name)
            ep.wait("endpoint_deleted")
            ep.sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
            action = "recreated"
        elif previous == config_name:
            action = "unchanged"
        else:
            ep.sm.update_endpoint(EndpointName=name, EndpointConfigName=config_name)
            action = "updated"

        step = f"wait for endpoint {name}"
        ep.wait("endpoint_in_service")
        described = ep.describe() or {}
        if described.get("EndpointConfigName") != config_name:
            # SageMaker rolled the update back: the previous configuration still serves.
            raise DeployError(f"update of endpoint {name} to {config_name} failed: "
                              f"{described.get('FailureReason', 'no reason given')}; it still serves "
                              f"{described.get('EndpointConfigName')}, which is left in place")

        step = f"invoke endpoint {name}"
        answer = ep.runtime.invoke_endpoint(EndpointName=name, ContentType="audio/wav",
                                            Accept="application/json", Body=test_wav(spec))
        response = check_answer(answer["Body"].read(), spec, name)

        step = "delete the configurations and models of earlier deploys"
        pruned = [] if action == "unchanged" else ep.prune(config_name, model_name)
    except (BotoCoreError, ClientError) as err:
        raise DeployError(f"{step}: {err}") from None

    return {
        "name": name,
        "action": action,
        "status": described["EndpointStatus"],
        "region": cfg.region,
        "model_name": model_name,
        "endpoint_config": config_name,
        "previous_endpoint_config": previous if previous != config_name else None,
        "variant": variant,
        "image": image,
        "model_data": model_data,
        "deleted": [f"{kind} {what}" for kind, what in pruned],
        "test_response": response,
    }


def delete(cfg, *, session: boto3.session.Session | None = None, wait_delay_s: int = 15) -> list[tuple[str, str]]:
    """Delete the endpoint, then every endpoint configuration and model its deploys
    created; return (kind, name) of what was deleted. The S3 archives stay."""
    step = "connect"
    deleted = []
    try:
        ep = _Endpoint(cfg, session, wait_delay_s)
        step = f"delete endpoint {cfg.endpoint_name}"
        current = ep.describe()
        if current is not None:
            if current["EndpointStatus"] in BUSY:
                ep.wait("endpoint_in_service")
            if current["EndpointStatus"] != "Deleting":
                ep.sm.delete_endpoint(EndpointName=cfg.endpoint_name)
            ep.wait("endpoint_deleted")
            deleted.append(("endpoint", cfg.endpoint_name))
        step = f"delete the configurations and models of {cfg.endpoint_name}"
        deleted += ep.prune(keep_config="", keep_model="")
    except (BotoCoreError, ClientError) as err:
        raise DeployError(f"{step}: {err}") from None
    return deleted
