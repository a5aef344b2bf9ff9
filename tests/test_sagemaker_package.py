"""The sagemaker-deploy stage: model.tar.gz layout and bytes, the container's
handlers end to end, and the deploy path against moto on loopback."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile

from keyspot import audio, features
from keyspot.deploy import package
from keyspot.features import FeatureSpec
from keyspot.serve import handler
from keyspot.serve.handler import RequestError

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "sagemaker_deploy.py"
LABELS = ("_silence_", "_unknown_", "yes", "no")
ROLE = "arn:aws:iam::123456789012:role/keyspot-test"


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, pcm, rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def tone(rate: int, seconds: float, hz: float, seed: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.05, t.shape)
    return audio.to_int16(0.4 * np.sin(2 * np.pi * hz * t) * np.exp(-2 * t) + noise)


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    bare = FeatureSpec(kind="mfcc", sample_rate=16000, clip_samples=16000, window_samples=480,
                       hop_samples=320, fft_size=512, mel_bins=40, mel_fmin=20.0, mel_fmax=4000.0,
                       num_mfcc=10, log_floor=1e-10, labels=LABELS)
    clips = np.stack([tone(16000, 1.0, hz, i) for i, hz in enumerate((200, 700, 1500, 3000))])
    raw = features.unnormalised(clips, bare)
    return dataclasses.replace(bare, mean=tuple(map(float, raw.mean(axis=(0, 1)))),
                               std=tuple(map(float, raw.std(axis=(0, 1)))))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, spec):
    """A workdir with data/features/spec.json and models/saved_model/, as the stage sees them."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((spec.num_frames, spec.num_coefficients, 1)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(len(spec.labels), activation="softmax"),
    ])
    root = tmp_path_factory.mktemp("workdir")
    (root / "data/features").mkdir(parents=True)
    spec.save(root / "data/features/spec.json")
    model.export(str(root / "models/saved_model"), verbose=False)
    return root, model


def build(root: Path, out: Path) -> str:
    return package.build(root / "models/saved_model", root / "data/features/spec.json", out)


# --- the archive ------------------------------------------------------------------------------

def test_tarball_layout(model_dir, tmp_path):
    root, _ = model_dir
    out = tmp_path / "model.tar.gz"
    sha = build(root, out)
    assert sha == hashlib.sha256(out.read_bytes()).hexdigest()
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    saved = sorted(p.relative_to(root / "models/saved_model").as_posix()
                   for p in (root / "models/saved_model").rglob("*"))
    assert "saved_model.pb" in saved and "variables/variables.index" in saved
    assert names == sorted(["1", *(f"1/{p}" for p in saved),
                            "code", "code/inference.py", "code/requirements.txt", "code/spec.json",
                            "code/keyspot", "code/keyspot/__init__.py", "code/keyspot/audio.py",
                            "code/keyspot/features.py", "code/keyspot/serve",
                            "code/keyspot/serve/__init__.py", "code/keyspot/serve/handler.py"])
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert out.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime
    with tarfile.open(out) as tar:
        read = lambda name: tar.extractfile(name).read()  # noqa: E731
        assert read("code/spec.json") == (root / "data/features/spec.json").read_bytes()
        assert read("code/keyspot/serve/handler.py") == Path(handler.__file__).read_bytes()
        assert read("code/keyspot/features.py") == Path(features.__file__).read_bytes()
        reqs = read("code/requirements.txt").decode()
    for pin in ("numpy==2.2.6", "scipy==1.15.3", "soundfile==0.13.1"):
        assert f"\n{pin}\n" in reqs


def test_tarball_is_byte_reproducible(model_dir, tmp_path):
    root, _ = model_dir
    a, b = tmp_path / "a/model.tar.gz", tmp_path / "b/model.tar.gz"
    assert build(root, a) == build(root, b)
    assert a.read_bytes() == b.read_bytes()
    assert [p.name for p in a.parent.iterdir()] == ["model.tar.gz"]  # no temp file left


def test_package_errors_name_the_input(model_dir, tmp_path):
    root, _ = model_dir
    with pytest.raises(package.PackageError, match="saved_model.pb"):
        package.build(tmp_path, root / "data/features/spec.json", tmp_path / "x.tar.gz")
    with pytest.raises(package.PackageError, match="no feature spec"):
        package.build(root / "models/saved_model", tmp_path / "spec.json", tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


# --- the container's handlers, from the extracted archive ------------------------------------

DRIVER = r"""
import importlib.util, json, sys, types
code = sys.argv[1]
spec = importlib.util.spec_from_file_location("inference", code + "/inference.py")
inference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(inference)
mode, src, dst = sys.argv[2:5]
where = {"handler": sys.modules["keyspot.serve.handler"].__file__,
         "features": sys.modules["keyspot.features"].__file__,
         "tensorflow": "tensorflow" in sys.modules}
if mode == "input":
    body = open(src, "rb").read()
    ctx = types.SimpleNamespace(request_content_type=sys.argv[5], accept_header="application/json")
    open(dst, "w").write(inference.input_handler(open(src, "rb"), ctx))
elif mode == "output":
    resp = types.SimpleNamespace(status_code=200, content=open(src, "rb").read())
    body, content_type = inference.output_handler(resp, None)
    open(dst, "w").write(json.dumps({"body": body, "content_type": content_type}))
elif mode == "errors":
    results = []
    for body, content_type in json.loads(open(src).read()):
        ctx = types.SimpleNamespace(request_content_type=content_type)
        try:
            inference.input_handler(types.SimpleNamespace(read=lambda b=body: b.encode("latin-1")), ctx)
            results.append(None)
        except Exception as err:
            results.append([type(err).__name__, str(err)])
    open(dst, "w").write(json.dumps(results))
print(json.dumps(where))
"""


def run_driver(code: Path, mode: str, src: Path, dst: Path, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", DRIVER, str(code), mode, str(src), str(dst), *extra],
                            cwd=code.parent.parent, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def extracted(model_dir, tmp_path_factory):
    root, _ = model_dir
    tmp = tmp_path_factory.mktemp("extracted")
    build(root, tmp / "model.tar.gz")
    with tarfile.open(tmp / "model.tar.gz") as tar:
        tar.extractall(tmp / "opt/ml/model", filter="data")
    return tmp / "opt/ml/model"


def serve_like_tfs(version_dir: Path, request_json: str) -> bytes:
    """What TensorFlow Serving's REST predict answers for {"instances": ...}."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    (name,) = fn.structured_input_signature[1]
    instances = np.asarray(json.loads(request_json)["instances"], dtype=np.float32)
    (output,) = fn(**{name: tf.constant(instances)}).values()
    return json.dumps({"predictions": output.numpy().tolist()}).encode()


def test_container_round_trip_matches_keras(model_dir, extracted, spec, tmp_path):
    _, model = model_dir
    code = extracted / "code"
    # Stereo, 22.05 kHz, 0.8 s: the handler must mix, resample and pad like load_clip.
    left = tone(22050, 0.8, 900, 7)
    wav = wav_bytes(np.stack([left, left // 2], axis=1), 22050)
    (tmp_path / "body.wav").write_bytes(wav)

    where = run_driver(code, "input", tmp_path / "body.wav", tmp_path / "request.json", "audio/wav")
    # The extracted copy serves, not this checkout, and TensorFlow stays out of the handler.
    assert Path(where["handler"]).is_relative_to(code) and Path(where["features"]).is_relative_to(code)
    assert where["tensorflow"] is False

    request = (tmp_path / "request.json").read_text()
    (tmp_path / "tfs.json").write_bytes(serve_like_tfs(extracted / "1", request))
    run_driver(code, "output", tmp_path / "tfs.json", tmp_path / "response.json")
    out = json.loads((tmp_path / "response.json").read_text())
    assert out["content_type"] == "application/json"
    (pred,) = json.loads(out["body"])["predictions"]
    assert list(pred["probabilities"]) == list(LABELS)
    probs = np.array(list(pred["probabilities"].values()))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)

    feats = features.compute(audio.load_clip(wav, spec.sample_rate, spec.clip_samples), spec)
    expected = model.predict(feats[..., None], verbose=0)[0]
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
    assert pred["label"] == LABELS[int(np.argmax(expected))]


def test_container_handler_errors(extracted, tmp_path):
    cases = [("", "audio/wav"), ("RIFF....this is not audio", "audio/wav"),
             ("hello", "text/plain"), ('{"features": [[1, 2, 3]]}', "application/json")]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    run_driver(extracted / "code", "errors", tmp_path / "cases.json", tmp_path / "errors.json")
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert [e[0] for e in errors] == ["RequestError"] * 4
    assert "empty request body" in errors[0][1]
    assert "not audio" in errors[1][1]
    assert "unsupported content type 'text/plain'" in errors[2][1]
    assert "expected (batch, 49, 10)" in errors[3][1]


# --- the handler in-process: every input route gives the reference features ------------------

def test_parse_request_routes_agree(spec):
    pcm = tone(16000, 1.0, 500, 3)
    expected = features.compute(pcm, spec)
    assert expected.shape == (1, 49, 10)
    bodies = [
        (wav_bytes(pcm, 16000), "audio/x-wav"),
        (wav_bytes(pcm, 16000), "Audio/WAV; charset=binary"),
        (json.dumps({"pcm": pcm.tolist(), "sample_rate": 16000}).encode(), "application/json"),
        (json.dumps({"pcm": [pcm.tolist()]}).encode(), "application/json"),
        (json.dumps({"features": expected[0].tolist()}).encode(), "application/json"),
        (json.dumps({"features": expected[..., None].tolist()}).encode(), "application/json"),
    ]
    for fmt in (pcm, expected):
        buf = io.BytesIO()
        np.save(buf, fmt)
        bodies.append((buf.getvalue(), "application/x-npy"))
    for body, content_type in bodies:
        got = handler.parse_request(body, content_type, spec)
        assert got.dtype == np.float32, content_type
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4, err_msg=content_type)


def test_parse_request_resamples_json_pcm_like_wav(spec):
    pcm = tone(8000, 1.2, 500, 4)
    from_json = handler.parse_request(json.dumps({"pcm": pcm.tolist(), "sample_rate": 8000}).encode(),
                                      "application/json", spec)
    from_wav = handler.parse_request(wav_bytes(pcm, 8000), "audio/wav", spec)
    np.testing.assert_allclose(from_json, from_wav, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"", "audio/wav", "empty request body"),
    (b"\x00\x01\x02 definitely not audio", "audio/wav", "not audio"),
    (b"abc", "text/csv", "unsupported content type 'text/csv'"),
    (b"abc", "", "unsupported content type ''"),
    (b"{not json", "application/json", "not JSON"),
    (b'{"pcm": [1, 2], "features": [[1]]}', "application/json", 'either "pcm" or "features"'),
    (b'{"pcm": [1.5, 2]}', "application/json", "int16 samples"),
    (b'{"pcm": [40000]}', "application/json", "int16 samples"),
    (b'{"pcm": [1, 2], "sample_rate": "16k"}', "application/json", "sample_rate"),
    (b'{"pcm": [[1, 2], [3]]}', "application/json", "equal lengths"),
    (b'{"features": [[0.0, 1.0]]}', "application/json", "expected (batch, 49, 10)"),
    (b"\x93NUMPY garbage", "application/x-npy", "not a .npy array"),
])
def test_parse_request_errors(spec, body, content_type, message):
    with pytest.raises(RequestError) as info:
        handler.parse_request(body, content_type, spec)
    assert message in str(info.value)


def test_format_response(spec):
    out = handler.format_response(np.array([[0.1, 0.2, 0.6, 0.1], [0.7, 0.1, 0.1, 0.1]]), spec)
    assert [p["label"] for p in out["predictions"]] == ["yes", "_silence_"]
    assert out["predictions"][0]["probabilities"] == {"_silence_": 0.1, "_unknown_": 0.2, "yes": 0.6,
                                                      "no": 0.1}
    json.dumps(out)  # plain floats, serialisable
    with pytest.raises(ValueError, match="4 labels"):
        handler.format_response(np.zeros((1, 3)), spec)
    np.testing.assert_array_equal(handler.tfs_predictions(b'{"predictions": [{"probs": [0.5, 0.5]}]}'),
                                  [[0.5, 0.5]])
    with pytest.raises(ValueError, match="without predictions"):
        handler.tfs_predictions(b'{"error": "boom"}')


# --- the stage, disabled and enabled ------------------------------------------------------------

def compose_params(path: Path, *overrides: str) -> None:
    from keyspot.compose import compose, write_params

    write_params(compose(REPO / "conf", list(overrides)), path)


def stage_workdir(model_dir, tmp_path: Path, *overrides: str) -> Path:
    root, _ = model_dir
    work = tmp_path / "work"
    shutil.copytree(root, work)
    compose_params(work / "params.yaml", *overrides)
    return work


def offline_env(**extra: str) -> dict:
    """No real AWS: fake credentials, no config files, everything sent to `extra`'s endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != ROLE_ENV}
    env.update(PYTHONPATH=str(REPO), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
               AWS_ENDPOINT_URL="http://127.0.0.1:9")  # discard port: nothing answers
    env.update(extra)
    return env


ROLE_ENV = "KEYSPOT_SAGEMAKER_ROLE"

# Runs the stage with boto3, botocore and sagemaker made unimportable.
NO_AWS = r"""
import runpy, sys
class NoAws:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"boto3", "botocore", "sagemaker", "s3transfer", "aiobotocore"}:
            raise ImportError(f"{name} imported by a disabled deploy")
sys.meta_path.insert(0, NoAws())
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_stage(work: Path, env: dict, no_aws: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", NO_AWS, str(STAGE)] if no_aws else [sys.executable, str(STAGE)]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)


def test_stage_disabled_is_offline_and_deterministic(model_dir, tmp_path):
    work = stage_workdir(model_dir, tmp_path)
    first = run_stage(work, offline_env(), no_aws=True)
    assert first.returncode == 0, first.stderr
    tarball = (work / "models/sagemaker/model.tar.gz").read_bytes()
    report_text = (work / "reports/deploy.json").read_text()
    assert json.loads(report_text) == {"enabled": False, "endpoint": None,
                                       "model_data": "models/sagemaker/model.tar.gz",
                                       "sha256": hashlib.sha256(tarball).hexdigest()}
    second = run_stage(work, offline_env(), no_aws=True)
    assert second.returncode == 0, second.stderr
    assert (work / "models/sagemaker/model.tar.gz").read_bytes() == tarball
    assert (work / "reports/deploy.json").read_text() == report_text


def test_stage_errors_are_one_line(model_dir, tmp_path):
    work = stage_workdir(model_dir, tmp_path, "deploy.enabled=true")
    result = run_stage(work, offline_env(**{ROLE_ENV: ROLE}))
    assert result.returncode == 2
    assert result.stderr.startswith("sagemaker-deploy: deploy.bucket is empty")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert not (work / "models/sagemaker").exists()

    compose_params(work / "params.yaml", "deploy.enabled=true", "deploy.bucket=b")
    result = run_stage(work, offline_env())
    assert result.returncode == 2 and f"{ROLE_ENV} is not set" in result.stderr

    shutil.rmtree(work / "models/saved_model")
    compose_params(work / "params.yaml")
    result = run_stage(work, offline_env())
    assert result.returncode == 2 and "saved_model.pb; run `dvc repro train`" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its state in this process: start every test from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
    yield url
    server.stop()


def moto_client(url: str, service: str):
    import boto3

    return boto3.client(service, region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


class FakeRuntime:
    """SageMaker Runtime's InvokeEndpoint on loopback, answering as our container would
    (keyspot.serve.handler + the SavedModel). moto's own runtime in server mode
    decodes request bodies as UTF-8, so it cannot take a WAV."""

    def __init__(self, version_dir: Path, spec: FeatureSpec):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import tensorflow as tf

        fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
        (name,) = fn.structured_input_signature[1]
        runtime = self
        self.requests: list[tuple[str, str, bytes]] = []
        self.reply: bytes | None = None  # set to answer with these bytes instead

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                runtime.requests.append((self.path, self.headers["Content-Type"], body))
                if runtime.reply is None:
                    feats = handler.parse_request(body, self.headers["Content-Type"], spec)
                    (probs,) = fn(**{name: tf.constant(handler.model_input(feats))}).values()
                    answer = json.dumps(handler.format_response(probs.numpy(), spec)).encode()
                else:
                    answer = runtime.reply
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake_runtime(model_dir, spec):
    root, _ = model_dir
    runtime = FakeRuntime(root / "models/saved_model", spec)
    yield runtime
    runtime.server.shutdown()
    runtime.server.server_close()


def test_stage_enabled_against_moto(model_dir, tmp_path, moto_url, fake_runtime, spec):
    work = stage_workdir(model_dir, tmp_path, "deploy.enabled=true", "deploy.bucket=keyspot-models",
                         "deploy.prefix=kws/models")
    moto_client(moto_url, "s3").create_bucket(Bucket="keyspot-models")
    env = offline_env(AWS_ENDPOINT_URL=moto_url, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=fake_runtime.url,
                      **{ROLE_ENV: ROLE})

    result = run_stage(work, env)
    assert result.returncode == 0, result.stderr
    tarball = (work / "models/sagemaker/model.tar.gz").read_bytes()
    sha = hashlib.sha256(tarball).hexdigest()
    report = json.loads((work / "reports/deploy.json").read_text())
    model_data = f"s3://keyspot-models/kws/models/{sha}/model.tar.gz"
    name = f"keyspot-kws-{sha[:12]}"
    assert report["enabled"] is True and report["sha256"] == sha and report["model_data"] == model_data
    endpoint = report["endpoint"]
    assert endpoint["name"] == "keyspot-kws" and endpoint["action"] == "created"
    assert endpoint["status"] == "InService" and endpoint["model_name"] == name
    assert endpoint["image"].endswith(".amazonaws.com/tensorflow-inference:2.16-cpu")
    # The smoke test sent a WAV to the endpoint and got our labels back.
    ((path, content_type, body),) = fake_runtime.requests
    assert (path, content_type) == ("/endpoints/keyspot-kws/invocations", "audio/wav")
    assert body[:4] == b"RIFF"
    (pred,) = endpoint["test_response"]["predictions"]
    assert sorted(pred["probabilities"]) == sorted(LABELS)  # the report sorts keys

    s3 = moto_client(moto_url, "s3")
    assert s3.get_object(Bucket="keyspot-models", Key=f"kws/models/{sha}/model.tar.gz")["Body"].read() == tarball
    sm = moto_client(moto_url, "sagemaker")
    model = sm.describe_model(ModelName=name)
    assert model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"]["ModelDataUrl"] == model_data
    assert model["PrimaryContainer"]["Image"] == endpoint["image"]
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == \
        (name, "ml.t2.medium", 1)
    described = sm.describe_endpoint(EndpointName="keyspot-kws")
    assert (described["EndpointConfigName"], described["EndpointStatus"]) == (name, "InService")

    # Same bytes again: nothing new is created, the endpoint is left as it is.
    again = run_stage(work, env)
    assert again.returncode == 0, again.stderr
    assert json.loads((work / "reports/deploy.json").read_text())["endpoint"]["action"] == "unchanged"
    assert len(sm.list_models()["Models"]) == 1


def test_deploy_updates_endpoint_to_new_model(tmp_path, moto_url, fake_runtime, spec, monkeypatch):
    """A new archive moves the existing endpoint to a new config. moto has no
    UpdateEndpoint, so this client emulates it with delete + create."""
    import boto3

    from keyspot.deploy import sagemaker
    from keyspot.params import Deploy

    class UpdatingSageMaker:
        def __init__(self, client):
            self._client, self.updates = client, []

        def __getattr__(self, name):
            return getattr(self._client, name)

        def update_endpoint(self, EndpointName, EndpointConfigName):  # noqa: N803
            self.updates.append((EndpointName, EndpointConfigName))
            self._client.delete_endpoint(EndpointName=EndpointName)
            self._client.create_endpoint(EndpointName=EndpointName, EndpointConfigName=EndpointConfigName)

    sm = UpdatingSageMaker(moto_client(moto_url, "sagemaker"))

    class Session(boto3.session.Session):
        def client(self, service, region_name=None):
            if service == "sagemaker-runtime":
                return moto_client(fake_runtime.url, service)
            return sm if service == "sagemaker" else moto_client(moto_url, service)

    monkeypatch.setenv(ROLE_ENV, ROLE)
    moto_client(moto_url, "s3").create_bucket(Bucket="kws-bucket")
    cfg = Deploy(enabled=True, region="us-east-1", framework_version="2.16", bucket="kws-bucket", prefix="",
                 endpoint_name="kws", instance_type="ml.m5.large", instance_count=2)
    results = []
    for i in range(2):
        tarball = tmp_path / f"{i}.tar.gz"
        tarball.write_bytes(f"model {i}".encode())
        sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
        results.append(sagemaker.deploy(tarball, sha, cfg, spec, session=Session(), wait_delay_s=1))
        assert results[-1]["test_response"]["predictions"][0]["label"] in LABELS
        assert results[-1]["model_data"] == f"s3://kws-bucket/{sha}/model.tar.gz"
    assert [r["action"] for r in results] == ["created", "updated"]
    assert sm.updates == [("kws", results[1]["endpoint_config"])]
    assert sm.describe_endpoint(EndpointName="kws")["EndpointConfigName"] == results[1]["model_name"]


def test_deploy_rejects_an_answer_that_is_not_ours(tmp_path, moto_url, fake_runtime, spec, monkeypatch):
    from keyspot.deploy import DeployError, sagemaker
    from keyspot.params import Deploy

    monkeypatch.setenv(ROLE_ENV, ROLE)
    env = offline_env(AWS_ENDPOINT_URL=moto_url, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=fake_runtime.url)
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    moto_client(moto_url, "s3").create_bucket(Bucket="kws-bucket")
    tarball = tmp_path / "m.tar.gz"
    tarball.write_bytes(b"x")
    cfg = Deploy(enabled=True, region="us-east-1", framework_version="2.16", bucket="kws-bucket", prefix="p",
                 endpoint_name="kws", instance_type="ml.t2.medium", instance_count=1)
    fake_runtime.reply = b'{"error": "model not loaded"}'
    with pytest.raises(DeployError, match="not keyspot predictions"):
        sagemaker.deploy(tarball, "0" * 64, cfg, spec)
    with pytest.raises(DeployError, match="deploy.bucket is empty"):
        sagemaker.deploy(tarball, "0" * 64, dataclasses.replace(cfg, bucket=""), spec)
