"""Put model.tar.gz behind a SageMaker endpoint (only when deploy.enabled).

The archive goes to s3://<bucket>/<prefix>/<sha256>/model.tar.gz, so equal
bytes are uploaded once. Model and endpoint config are named after the hash
too; the endpoint keeps `deploy.endpoint_name` and is created, or updated to
the new config, then waited on until InService and smoke-tested with a WAV.

The execution role comes from the KEYSPOT_SAGEMAKER_ROLE environment variable
and never from the repository. boto3 reads credentials and endpoints the
usual way (AWS_PROFILE, AWS_ENDPOINT_URL, ...).
"""

from __future__ import annotations

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


def _resource_name(endpoint_name: str, sha256: str) -> str:
    """`<endpoint>-<hash12>`, within SageMaker's 63-character name rule."""
    return f"{endpoint_name[:50].rstrip('-')}-{sha256[:12]}"


def _missing(err: ClientError) -> bool:
    error = err.response.get("Error", {})
    return (error.get("Code") in ("ValidationException", "ValidationError")
            and "could not find" in error.get("Message", "").lower())


def check_config(cfg) -> str:
    """Fail early on deploy params or environment; return the execution role ARN."""
    if not cfg.bucket:
        raise DeployError("deploy.bucket is empty; set it to an S3 bucket you own, e.g. "
                          "`dvc exp run -S deploy.bucket=my-bucket`, or set deploy.enabled=false")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", cfg.endpoint_name):
        raise DeployError(f"deploy.endpoint_name: {cfg.endpoint_name!r} is not a valid SageMaker "
                          "name (letters, digits and hyphens, at most 63)")
    if cfg.instance_count < 1:
        raise DeployError("deploy.instance_count: must be at least 1")
    role = os.environ.get(ROLE_ENV, "").strip()
    if not role:
        raise DeployError(f"{ROLE_ENV} is not set; export the ARN of a SageMaker execution role "
                          "(arn:aws:iam::<account>:role/<name>)")
    return role


def deploy(tarball: Path | str, sha256: str, cfg, spec: FeatureSpec, *,
           session: boto3.session.Session | None = None,
           wait_delay_s: int = 30, wait_attempts: int = 60) -> dict:
    """Upload, create or update the endpoint, wait, invoke; return a report dict.

    `cfg` is keyspot.params.Deploy. Any AWS failure is raised as DeployError
    naming the step that failed.
    """
    role = check_config(cfg)
    session = session or boto3.session.Session(region_name=cfg.region)
    step = "connect"
    try:
        s3 = session.client("s3", region_name=cfg.region)
        sm = session.client("sagemaker", region_name=cfg.region)
        runtime = session.client("sagemaker-runtime", region_name=cfg.region)

        step = f"upload to s3://{cfg.bucket}"
        key = "/".join(p for p in (cfg.prefix.strip("/"), sha256, "model.tar.gz") if p)
        model_data = f"s3://{cfg.bucket}/{key}"
        try:
            s3.head_object(Bucket=cfg.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            s3.upload_file(str(tarball), cfg.bucket, key)

        image = image_uri(cfg.region, cfg.framework_version, cfg.instance_type)
        name = _resource_name(cfg.endpoint_name, sha256)

        step = f"create model {name}"
        try:
            sm.describe_model(ModelName=name)
        except ClientError as err:
            if not _missing(err):
                raise
            sm.create_model(ModelName=name, ExecutionRoleArn=role,
                            PrimaryContainer={"Image": image, "ModelDataUrl": model_data})

        step = f"create endpoint config {name}"
        try:
            sm.describe_endpoint_config(EndpointConfigName=name)
        except ClientError as err:
            if not _missing(err):
                raise
            sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": name,
                "InstanceType": cfg.instance_type,
                "InitialInstanceCount": cfg.instance_count,
                "InitialVariantWeight": 1.0}])

        step = f"create or update endpoint {cfg.endpoint_name}"
        try:
            current = sm.describe_endpoint(EndpointName=cfg.endpoint_name)
        except ClientError as err:
            if not _missing(err):
                raise
            sm.create_endpoint(EndpointName=cfg.endpoint_name, EndpointConfigName=name)
            action = "created"
        else:
            if current.get("EndpointConfigName") == name and current.get("EndpointStatus") != "Failed":
                action = "unchanged"
            else:
                sm.update_endpoint(EndpointName=cfg.endpoint_name, EndpointConfigName=name)
                action = "updated"

        step = f"wait for endpoint {cfg.endpoint_name}"
        try:
            sm.get_waiter("endpoint_in_service").wait(
                EndpointName=cfg.endpoint_name,
                WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_attempts})
        except WaiterError:
            described = sm.describe_endpoint(EndpointName=cfg.endpoint_name)
            raise DeployError(f"endpoint {cfg.endpoint_name} is {described.get('EndpointStatus')}: "
                              f"{described.get('FailureReason', 'no reason given')}") from None
        status = sm.describe_endpoint(EndpointName=cfg.endpoint_name)["EndpointStatus"]

        step = f"invoke endpoint {cfg.endpoint_name}"
        answer = runtime.invoke_endpoint(EndpointName=cfg.endpoint_name, ContentType="audio/wav",
                                         Accept="application/json", Body=test_wav(spec))
        body = answer["Body"].read()
    except (BotoCoreError, ClientError) as err:
        raise DeployError(f"{step}: {err}") from None

    try:
        response = json.loads(body)
        labels = [p["label"] for p in response["predictions"]]
    except (ValueError, KeyError, TypeError):
        raise DeployError(f"endpoint {cfg.endpoint_name} answered the test clip with "
                          f"{body[:200]!r}, not keyspot predictions") from None
    if not labels or not set(labels) <= set(spec.labels):
        raise DeployError(f"endpoint {cfg.endpoint_name} answered labels {labels}, "
                          f"not among the spec's {list(spec.labels)}")
    return {
        "name": cfg.endpoint_name,
        "action": action,
        "status": status,
        "region": cfg.region,
        "model_name": name,
        "endpoint_config": name,
        "image": image,
        "model_data": model_data,
        "test_response": response,
    }
