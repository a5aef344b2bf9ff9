"""The SageMaker endpoint lifecycle against moto's server on loopback: create, a
second run that changes nothing, an update to a changed model, a failed update,
and `keyspot deploy delete`.

moto 5.2.5 has no UpdateEndpoint, and its InvokeEndpoint in server mode
decodes request bodies as UTF-8 (so it cannot take a WAV) and answers with
canned results. Those two calls are answered by botocore's Stubber, which
checks each request against the SageMaker API model and the expected
parameters: InvokeEndpoint answers with what keyspot's request path
(keyspot.serve.handler with the float TFLite model) says about the test clip;
UpdateEndpoint's effect (the endpoint serving the new configuration) is then
replayed on moto. The failed update is SageMaker behaviour moto cannot show
(a rollback with a FailureReason), so that test stubs the whole SageMaker
client and checks the exact sequence of calls: nothing gets deleted.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from test_serve import build_workdir

from keyspot.deploy import DeployError, sagemaker
from keyspot.schema import Deploy

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "sagemaker_deploy.py"
ROLE = "arn:aws:iam::123456789012:role/keyspot-test"
ENDPOINT = "kws"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NOWHERE = "http://127.0.0.1:9"  # the discard port: a stubbed client never gets there


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return build_workdir(tmp_path_factory.mktemp("deploy"))


@pytest.fixture(scope="module")
def answer(workdir) -> bytes:
    """The container's answer to the smoke-test clip: keyspot's request path and model."""
    from keyspot.serve import handler
    from keyspot.tflite_runner import TFLiteRunner

    spec = workdir["spec"]
    runner = TFLiteRunner.litert((workdir["root"] / "float.tflite").read_bytes()).check_spec(spec)
    return json.dumps(handler.handle(sagemaker.test_wav(spec), "audio/wav", spec, runner)).encode()


@pytest.fixture
def moto_url(moto_server):
    """The module's moto server, emptied, with the deploy bucket: moto keeps
    its state across requests, so every test starts from nothing."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    moto_client(moto_server, "s3").create_bucket(Bucket="kws-bucket")
    return moto_server


def moto_client(url: str, service: str):
    return boto3.client(service, region_name=REGION, endpoint_url=url, **CREDENTIALS)


def config(**changes) -> Deploy:
    base = Deploy(enabled=True, region=REGION, framework_version="2.16", bucket="kws-bucket",
                  prefix="models", endpoint_name=ENDPOINT, role_arn=ROLE, serverless=False,
                  instance_type="ml.m5.large", instance_count=1, serverless_memory_mb=2048,
                  serverless_max_concurrency=5, wait_minutes=1)
    return dataclasses.replace(base, **changes)


def invoke_response(answer: bytes) -> dict:
    return {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "application/json",
            "InvokedProductionVariant": "AllTraffic"}


def stubbed_runtime(spec, answer: bytes, times: int):
    """SageMaker Runtime whose InvokeEndpoint expects the smoke-test WAV `times` times."""
    client = boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=NOWHERE, **CREDENTIALS)
    stubber = Stubber(client)
    for _ in range(times):
        stubber.add_response("invoke_endpoint", invoke_response(answer),
                             {"EndpointName": ENDPOINT, "ContentType": "audio/wav",
                              "Accept": "application/json", "Body": sagemaker.test_wav(spec)})
    stubber.activate()
    return client, stubber


class MotoWithUpdateEndpoint:
    """moto's SageMaker client plus UpdateEndpoint: Stubber-checked, its effect replayed on moto."""

    def __init__(self, url: str):
        self._moto = moto_client(url, "sagemaker")
        self._stubbed = boto3.client("sagemaker", region_name=REGION, endpoint_url=NOWHERE, **CREDENTIALS)
        self._stubber = Stubber(self._stubbed)
        self._stubber.activate()
        self.updates: list[dict] = []

    def expect_update(self) -> None:
        arn = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}"
        self._stubber.add_response("update_endpoint", {"EndpointArn": arn},
                                   {"EndpointName": ENDPOINT, "EndpointConfigName": ANY})

    def update_endpoint(self, **kwargs):
        response = self._stubbed.update_endpoint(**kwargs)  # raises if not expected, or malformed
        self.updates.append(kwargs)
        self._moto.delete_endpoint(EndpointName=kwargs["EndpointName"])
        self._moto.create_endpoint(**kwargs)
        return response

    def __getattr__(self, name):
        return getattr(self._moto, name)


class Clients:
    """What `deploy` asks of a boto3 session: a client per service."""

    def __init__(self, **clients):
        self.clients = {name.replace("_", "-"): client for name, client in clients.items()}

    def client(self, service, region_name=None):
        return self.clients[service]


def tarball(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    path = tmp_path / f"{hashlib.sha256(content).hexdigest()[:8]}.tar.gz"
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def ours(sm) -> tuple[list[str], list[str]]:
    configs = sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"])
    models = sorted(m["ModelName"] for m in sm.list_models()["Models"])
    return configs, models


# --- create, no-op, update -----------------------------------------------------------------------

def test_create_then_a_second_run_changes_nothing(workdir, answer, moto_url, tmp_path):
    spec = workdir["spec"]
    sm = MotoWithUpdateEndpoint(moto_url)  # no update expected: one would fail the Stubber
    runtime, stubber = stubbed_runtime(spec, answer, times=2)
    clients = Clients(s3=moto_client(moto_url, "s3"), sagemaker=sm, sagemaker_runtime=runtime)
    path, sha = tarball(tmp_path, b"model A")

    first = sagemaker.deploy(path, sha, config(), spec, session=clients, wait_delay_s=1)
    assert first["action"] == "created" and first["status"] == "InService"
    assert first["model_data"] == f"s3://kws-bucket/models/{sha}/model.tar.gz"
    assert first["image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16-cpu"
    assert first["test_response"] == json.loads(answer)
    assert first["model_name"].startswith("kws-") and first["endpoint_config"].startswith("kws-")
    s3 = moto_client(moto_url, "s3")
    assert s3.get_object(Bucket="kws-bucket", Key=f"models/{sha}/model.tar.gz")["Body"].read() == b"model A"
    model = sm.describe_model(ModelName=first["model_name"])
    assert model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"] == {"Image": first["image"], "ModelDataUrl": first["model_data"],
                                         **{k: v for k, v in model["PrimaryContainer"].items()
                                            if k not in ("Image", "ModelDataUrl")}}
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=first["endpoint_config"])["ProductionVariants"]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == \
        (first["model_name"], "ml.m5.large", 1)
    described = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert (described["EndpointConfigName"], described["EndpointStatus"]) == (first["endpoint_config"], "InService")
    before = (ours(sm), described["CreationTime"], s3.head_object(Bucket="kws-bucket",
                                                                  Key=f"models/{sha}/model.tar.gz")["ETag"])

    second = sagemaker.deploy(path, sha, config(), spec, session=clients, wait_delay_s=1)
    assert second["action"] == "unchanged" and second["deleted"] == []
    assert (second["model_name"], second["endpoint_config"]) == (first["model_name"], first["endpoint_config"])
    after = (ours(sm), sm.describe_endpoint(EndpointName=ENDPOINT)["CreationTime"],
             s3.head_object(Bucket="kws-bucket", Key=f"models/{sha}/model.tar.gz")["ETag"])
    assert after == before and sm.updates == []
    stubber.assert_no_pending_responses()


def test_changed_model_or_settings_update_the_endpoint(workdir, answer, moto_url, tmp_path):
    spec = workdir["spec"]
    sm = MotoWithUpdateEndpoint(moto_url)
    runtime, stubber = stubbed_runtime(spec, answer, times=4)
    clients = Clients(s3=moto_client(moto_url, "s3"), sagemaker=sm, sagemaker_runtime=runtime)
    path_a, sha_a = tarball(tmp_path, b"model A")
    path_b, sha_b = tarball(tmp_path, b"model B")

    first = sagemaker.deploy(path_a, sha_a, config(), spec, session=clients, wait_delay_s=1)
    sm.expect_update()
    second = sagemaker.deploy(path_b, sha_b, config(), spec, session=clients, wait_delay_s=1)
    assert second["action"] == "updated" and second["previous_endpoint_config"] == first["endpoint_config"]
    assert sm.updates == [{"EndpointName": ENDPOINT, "EndpointConfigName": second["endpoint_config"]}]
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == second["endpoint_config"]
    # The superseded configuration and model are gone; the new ones serve.
    assert ours(sm) == ([second["endpoint_config"]], [second["model_name"]])
    assert sorted(second["deleted"]) == sorted([f"endpoint configuration {first['endpoint_config']}",
                                                f"model {first['model_name']}"])

    # Same model, two instances: a new configuration of the same model.
    sm.expect_update()
    third = sagemaker.deploy(path_b, sha_b, config(instance_count=2), spec, session=clients, wait_delay_s=1)
    assert third["action"] == "updated" and third["model_name"] == second["model_name"]
    assert third["endpoint_config"] != second["endpoint_config"]
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=third["endpoint_config"])["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 2
    assert ours(sm) == ([third["endpoint_config"]], [third["model_name"]])

    # Serverless: memory and concurrency instead of instances.
    sm.expect_update()
    fourth = sagemaker.deploy(path_b, sha_b, config(serverless=True, serverless_memory_mb=3072,
                                                    serverless_max_concurrency=7),
                              spec, session=clients, wait_delay_s=1)
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=fourth["endpoint_config"])["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 7}
    assert "InstanceType" not in variant and fourth["image"].endswith("tensorflow-inference:2.16-cpu")
    stubber.assert_no_pending_responses()


# --- failures -------------------------------------------------------------------------------------

def not_found(what: str) -> dict:
    return {"service_error_code": "ValidationException", "service_message": f"Could not find {what}.",
            "http_status_code": 400}


def test_failed_update_leaves_the_previous_configuration_serving(workdir, answer, moto_url, tmp_path):
    """SageMaker rolls a failed update back: InService on the old configuration, with a
    FailureReason. The stage must fail with that reason and delete nothing."""
    spec = workdir["spec"]
    cfg = config()
    path, sha = tarball(tmp_path, b"model that does not load")
    image = sagemaker.image_uri(REGION, "2.16", "ml.m5.large")
    model_name = sagemaker.resource_name(ENDPOINT, sagemaker._hash(f"s3://kws-bucket/models/{sha}/model.tar.gz",
                                                                    image, ROLE))
    config_name = sagemaker.resource_name(ENDPOINT, sagemaker._hash(
        model_name, sagemaker.production_variant(cfg, model_name)))
    old = "kws-0123456789ab"
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    endpoint = {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/kws",
                "EndpointConfigName": old, "CreationTime": created, "LastModifiedTime": created}

    client = boto3.client("sagemaker", region_name=REGION, endpoint_url=NOWHERE, **CREDENTIALS)
    stubber = Stubber(client)
    stubber.add_client_error("describe_model", **not_found("model"), expected_params={"ModelName": model_name})
    stubber.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:{REGION}:123456789012:model/{model_name}"},
                         {"ModelName": model_name, "ExecutionRoleArn": ROLE,
                          "PrimaryContainer": {"Image": image, "ModelDataUrl": ANY}})
    stubber.add_client_error("describe_endpoint_config", **not_found("endpoint configuration"),
                             expected_params={"EndpointConfigName": config_name})
    stubber.add_response("create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint-config/{config_name}"},
                         {"EndpointConfigName": config_name, "ProductionVariants": ANY})
    stubber.add_response("describe_endpoint", {**endpoint, "EndpointStatus": "InService"}, {"EndpointName": ENDPOINT})
    stubber.add_response("update_endpoint", {"EndpointArn": endpoint["EndpointArn"]},
                         {"EndpointName": ENDPOINT, "EndpointConfigName": config_name})
    # The waiter sees the update in progress, then the rollback's InService; then it is described once more.
    stubber.add_response("describe_endpoint", {**endpoint, "EndpointStatus": "Updating"}, {"EndpointName": ENDPOINT})
    for _ in range(2):
        stubber.add_response("describe_endpoint", {**endpoint, "EndpointStatus": "InService",
                                                   "FailureReason": reason}, {"EndpointName": ENDPOINT})
    stubber.activate()
    runtime, runtime_stubber = stubbed_runtime(spec, answer, times=0)  # the smoke test must not run
    clients = Clients(s3=moto_client(moto_url, "s3"), sagemaker=client, sagemaker_runtime=runtime)

    with pytest.raises(DeployError) as info:
        sagemaker.deploy(path, sha, cfg, spec, session=clients, wait_delay_s=1)
    message = str(info.value)
    assert f"update of endpoint kws to {config_name} failed: {reason}" in message
    assert f"it still serves {old}, which is left in place" in message
    # Every stubbed call happened, in order, and no other (a delete would have raised).
    stubber.assert_no_pending_responses()


def test_endpoint_that_fails_to_start_names_the_reason(workdir, answer, moto_url, tmp_path):
    spec = workdir["spec"]
    reason = "Image not found"
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    failed = {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/kws",
              "EndpointStatus": "Failed", "FailureReason": reason, "CreationTime": now, "LastModifiedTime": now}

    class FailingSageMaker(MotoWithUpdateEndpoint):
        """moto creates the endpoint; SageMaker then reports that its container never came up."""

        def describe_endpoint(self, **kwargs):
            self._moto.describe_endpoint(**kwargs)  # "could not find" until it is created
            return failed

        def get_waiter(self, name):
            self._stubber.add_response("describe_endpoint", failed, {"EndpointName": ENDPOINT})
            return self._stubbed.get_waiter(name)

    runtime, _ = stubbed_runtime(spec, answer, times=0)
    clients = Clients(s3=moto_client(moto_url, "s3"), sagemaker=FailingSageMaker(moto_url), sagemaker_runtime=runtime)
    path, sha = tarball(tmp_path, b"model A")
    with pytest.raises(DeployError, match=f"endpoint kws is Failed after waiting: {reason}"):
        sagemaker.deploy(path, sha, config(), spec, session=clients, wait_delay_s=1)


def test_a_failed_endpoint_is_recreated(workdir, answer, moto_url, tmp_path):
    """A Failed endpoint cannot be updated: the next deploy deletes and creates it."""
    spec = workdir["spec"]

    class FailedOnce(MotoWithUpdateEndpoint):
        described = 0

        def describe_endpoint(self, **kwargs):
            answer = self._moto.describe_endpoint(**kwargs)
            self.described += 1
            return {**answer, "EndpointStatus": "Failed"} if self.described == 1 else answer

    runtime, stubber = stubbed_runtime(spec, answer, times=2)
    path_a, sha_a = tarball(tmp_path, b"model A")
    path_b, sha_b = tarball(tmp_path, b"model B")
    sagemaker.deploy(path_a, sha_a, config(), spec, wait_delay_s=1, session=Clients(
        s3=moto_client(moto_url, "s3"), sagemaker=MotoWithUpdateEndpoint(moto_url), sagemaker_runtime=runtime))
    sm = FailedOnce(moto_url)  # no UpdateEndpoint expected
    result = sagemaker.deploy(path_b, sha_b, config(), spec, wait_delay_s=1, session=Clients(
        s3=moto_client(moto_url, "s3"), sagemaker=sm, sagemaker_runtime=runtime))
    assert result["action"] == "recreated" and sm.updates == []
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == result["endpoint_config"]
    stubber.assert_no_pending_responses()


def test_an_answer_that_is_not_ours_fails_the_deploy(workdir, moto_url, tmp_path):
    spec = workdir["spec"]
    path, sha = tarball(tmp_path, b"model A")
    other = {"predictions": [{"label": "cat", "probabilities": {"cat": 0.9, "dog": 0.1}}]}
    for reply, message in [(b'{"error": "model not loaded"}', "not keyspot predictions"),
                           (json.dumps(other).encode(), "it serves another model")]:
        runtime, _ = stubbed_runtime(spec, reply, times=1)
        clients = Clients(s3=moto_client(moto_url, "s3"), sagemaker=MotoWithUpdateEndpoint(moto_url),
                          sagemaker_runtime=runtime)
        with pytest.raises(DeployError, match=message):
            sagemaker.deploy(path, sha, config(), spec, session=clients, wait_delay_s=1)


def test_config_errors_name_the_key(monkeypatch):
    monkeypatch.delenv(sagemaker.ROLE_ENV, raising=False)
    for changes, message in [({"bucket": ""}, "deploy.bucket is empty"),
                             ({"endpoint_name": "no_underscores"}, "deploy.endpoint_name"),
                             ({"instance_count": 0}, "deploy.instance_count"),
                             ({"instance_type": "t2.medium"}, "deploy.instance_type"),
                             ({"serverless": True, "serverless_memory_mb": 1000}, "deploy.serverless_memory_mb"),
                             ({"serverless": True, "serverless_max_concurrency": 0},
                              "deploy.serverless_max_concurrency"),
                             ({"role_arn": ""}, f"no execution role: export {sagemaker.ROLE_ENV}"),
                             ({"role_arn": "admin"}, "deploy.role_arn: 'admin' is not an IAM role ARN")]:
        with pytest.raises(DeployError, match=message):
            sagemaker.check_config(config(**changes))
    monkeypatch.setenv(sagemaker.ROLE_ENV, ROLE)
    assert sagemaker.check_config(config(role_arn="")) == ROLE


# --- the stage and `keyspot deploy delete`, as a user runs them -------------------------------------

# Runs a script with InvokeEndpoint answered by a Stubber (see the module docstring).
STUBBED_INVOKE = r"""
import io, runpy, sys
import boto3
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
script, answer_file = sys.argv[1], sys.argv[2]
answer = open(answer_file, "rb").read()
make_client = boto3.session.Session.client
def client(self, service, *args, **kwargs):
    made = make_client(self, service, *args, **kwargs)
    if service == "sagemaker-runtime":
        stubber = Stubber(made)
        stubber.add_response("invoke_endpoint",
                             {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "application/json"},
                             {"EndpointName": "keyspot-kws", "ContentType": "audio/wav",
                              "Accept": "application/json", "Body": ANY})
        stubber.activate()
    return made
boto3.session.Session.client = client
sys.argv = [script, *sys.argv[3:]]
runpy.run_path(script, run_name="__main__")
"""


def aws_env(moto_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != sagemaker.ROLE_ENV}
    env.update(PYTHONPATH=str(REPO), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true", AWS_ENDPOINT_URL=moto_url, **extra)
    return env


def test_stage_deploys_then_does_nothing_then_delete_removes_it(workdir, answer, moto_url, tmp_path):
    import shutil

    from keyspot.compose import compose, write_params

    work = tmp_path / "work"
    shutil.copytree(workdir["root"] / "data", work / "data")
    shutil.copytree(workdir["root"] / "models", work / "models")
    write_params(compose(REPO / "conf", ["deploy.enabled=true", "deploy.bucket=kws-bucket",
                                         "deploy.prefix=kws"]), work / "params.yaml")
    (tmp_path / "answer.json").write_bytes(answer)
    env = aws_env(moto_url, **{sagemaker.ROLE_ENV: ROLE})

    def stage():
        return subprocess.run([sys.executable, "-c", STUBBED_INVOKE, str(STAGE), str(tmp_path / "answer.json")],
                              cwd=work, env=env, capture_output=True, text=True, timeout=300)

    first = stage()
    assert first.returncode == 0, first.stderr
    report = json.loads((work / "reports/deploy.json").read_text())
    sha = hashlib.sha256((work / "models/sagemaker/model.tar.gz").read_bytes()).hexdigest()
    endpoint = report["endpoint"]
    assert report["enabled"] is True and report["sha256"] == sha
    assert report["model_data"] == endpoint["model_data"] == f"s3://kws-bucket/kws/{sha}/model.tar.gz"
    assert (endpoint["name"], endpoint["action"], endpoint["status"]) == ("keyspot-kws", "created", "InService")
    assert endpoint["variant"] == {"VariantName": "AllTraffic", "ModelName": endpoint["model_name"],
                                   "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1,
                                   "InitialVariantWeight": 1.0}
    assert endpoint["test_response"] == json.loads(answer)
    sm = moto_client(moto_url, "sagemaker")
    assert sm.describe_endpoint(EndpointName="keyspot-kws")["EndpointConfigName"] == endpoint["endpoint_config"]

    again = stage()
    assert again.returncode == 0, again.stderr
    assert json.loads((work / "reports/deploy.json").read_text())["endpoint"]["action"] == "unchanged"
    assert ours(sm) == ([endpoint["endpoint_config"]], [endpoint["model_name"]])

    # Someone else's model in the same account stays.
    sm.create_model(ModelName="keyspot-kws-v2-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": endpoint["image"]})

    def delete():
        return subprocess.run([sys.executable, "-m", "keyspot.cli", "deploy", "delete"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)

    deleted = delete()
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.splitlines() == ["deleted endpoint keyspot-kws",
                                           f"deleted endpoint configuration {endpoint['endpoint_config']}",
                                           f"deleted model {endpoint['model_name']}"]
    assert sm.list_endpoints()["Endpoints"] == []
    assert ours(sm) == ([], ["keyspot-kws-v2-model"])
    again = delete()
    assert again.returncode == 0 and again.stdout.startswith("nothing to delete: no endpoint 'keyspot-kws'")

    broken = subprocess.run(
        [sys.executable, "-m", "keyspot.cli", "deploy", "delete", "--params", "missing.yaml"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 2 and "missing.yaml: not found" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_the_default_framework_versions_have_images_and_agree():
    """deploy.framework_version serves what sagemaker.framework_version
    (the TensorFlow of requirements.lock) trains: the newest TF Serving image
    the SDK has, no newer than the training one."""
    from keyspot.sagemaker_jobs import config as job_config
    from keyspot.schema import SageMakerJobs

    serving, training = Deploy().framework_version, SageMakerJobs().framework_version
    assert f"tensorflow-inference:{serving}-cpu" in sagemaker.image_uri(REGION, serving, "ml.m5.large")
    assert f"tensorflow-training:{training}-cpu" in job_config.image_uri(SageMakerJobs())
    assert tuple(map(int, serving.split("."))) <= tuple(map(int, training.split(".")))
    import tensorflow as tf
    assert tf.__version__.startswith(training + ".")
