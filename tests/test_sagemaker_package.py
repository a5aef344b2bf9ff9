"""The sagemaker-deploy stage's package: model.tar.gz layout and bytes, the
container's request handling end to end, the request parser, and the stage
when deploying is off or misconfigured. The endpoint lifecycle against moto
is tests/test_deploy_lifecycle.py."""

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
from pathlib import Path

import numpy as np
import pytest
import soundfile

from keyspot import audio, features
from keyspot.deploy import package
from keyspot.features import FeatureSpec
from keyspot.serve import handler, tfserving
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
                            "code/keyspot", "code/keyspot/__init__.py", "code/keyspot/audio.py", "code/keyspot/errors.py",
                            "code/keyspot/features", "code/keyspot/features/__init__.py", "code/keyspot/serve",
                            "code/keyspot/serve/__init__.py", "code/keyspot/serve/handler.py",
                            "code/keyspot/serve/tfserving.py"])
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert out.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime
    with tarfile.open(out) as tar:
        read = lambda name: tar.extractfile(name).read()  # noqa: E731
        assert read("code/spec.json") == (root / "data/features/spec.json").read_bytes()
        assert read("code/keyspot/serve/handler.py") == Path(handler.__file__).read_bytes()
        assert read("code/keyspot/serve/tfserving.py") == Path(tfserving.__file__).read_bytes()
        assert read("code/keyspot/features/__init__.py") == Path(features.__file__).read_bytes()
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


# --- the container's handler, from the extracted archive ---------------------------------------

# Loads code/inference.py as the SageMaker TensorFlow Serving container does
# (python_service.py: importlib from /opt/ml/model/code) and calls
# handler(data, context) with the container's context attributes.
DRIVER = r"""
import importlib.util, io, json, sys, types
code = sys.argv[1]
spec = importlib.util.spec_from_file_location("inference", code + "/inference.py")
inference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(inference)
rest_uri, src, dst = sys.argv[2:5]
results = []
for body, content_type in json.loads(open(src).read()):
    ctx = types.SimpleNamespace(request_content_type=content_type, accept_header="application/json",
                                rest_uri=rest_uri)
    try:
        answer, answer_type = inference.handler(io.BytesIO(body.encode("latin-1")), ctx)
        results.append({"body": answer, "content_type": answer_type})
    except Exception as err:
        results.append({"error": [type(err).__name__, str(err)]})
open(dst, "w").write(json.dumps(results))
print(json.dumps({"handler": sys.modules["keyspot.serve.handler"].__file__,
                  "features": sys.modules["keyspot.features"].__file__,
                  "keyspot": sorted(m.__file__ for name, m in sys.modules.items()
                                    if name.split(".")[0] == "keyspot" and getattr(m, "__file__", None)),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def run_driver(code: Path, rest_uri: str, cases: list[tuple[bytes, str]], tmp: Path) -> tuple[list, dict]:
    (tmp / "cases.json").write_text(json.dumps([(b.decode("latin-1"), t) for b, t in cases]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", DRIVER, str(code), rest_uri, str(tmp / "cases.json"),
                             str(tmp / "results.json")],
                            cwd=code.parent.parent, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp / "results.json").read_text()), json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def extracted(model_dir, tmp_path_factory):
    root, _ = model_dir
    tmp = tmp_path_factory.mktemp("extracted")
    build(root, tmp / "model.tar.gz")
    with tarfile.open(tmp / "model.tar.gz") as tar:
        tar.extractall(tmp / "opt/ml/model", filter="data")
    return tmp / "opt/ml/model"


class TFServingREST:
    """TensorFlow Serving's REST predict API on loopback, running the archive's SavedModel
    (1/) as TensorFlow Serving would: {"instances": ...} in, {"predictions": ...} out.
    TensorFlow Serving itself is a C++ server outside PyPI and Debian."""

    def __init__(self, version_dir: Path):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import tensorflow as tf

        fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
        (name,) = fn.structured_input_signature[1]
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, **request})
                instances = np.asarray(request["instances"], dtype=np.float32)
                (output,) = fn(**{name: tf.constant(instances)}).values()
                answer = json.dumps({"predictions": output.numpy().tolist()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.rest_uri = f"http://127.0.0.1:{self.server.server_address[1]}/v1/models/model:predict"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def tf_serving(extracted):
    server = TFServingREST(extracted / "1")
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_container_round_trip_matches_keras(model_dir, extracted, tf_serving, spec, tmp_path):
    _, model = model_dir
    # Stereo, 22.05 kHz, 0.8 s: the handler must mix, resample and pad like load_clip.
    left = tone(22050, 0.8, 900, 7)
    wav = wav_bytes(np.stack([left, left // 2], axis=1), 22050)

    (out,), where = run_driver(extracted / "code", tf_serving.rest_uri, [(wav, "audio/wav")], tmp_path)
    # The extracted copy serves, not this checkout, and TensorFlow stays out of the handler.
    code = extracted / "code"
    assert Path(where["handler"]).is_relative_to(code) and Path(where["features"]).is_relative_to(code)
    # Every keyspot module the handler imports is in the archive: the
    # container has no keyspot installed (this process's environment does).
    outside = [f for f in where["keyspot"] if not Path(f).is_relative_to(code)]
    assert not outside, f"the archive lacks {outside}"
    assert where["tensorflow"] is False
    assert out["content_type"] == "application/json", out
    (request,) = tf_serving.requests
    assert request["path"] == "/v1/models/model:predict"
    assert np.asarray(request["instances"]).shape == (1, 49, 10, 1)

    (pred,) = json.loads(out["body"])["predictions"]
    assert list(pred["probabilities"]) == list(LABELS)
    probs = np.array(list(pred["probabilities"].values()))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    feats = features.compute(audio.load_clip(wav, spec.sample_rate, spec.clip_samples), spec)
    expected = model.predict(feats[..., None], verbose=0)[0]
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
    assert pred["label"] == LABELS[int(np.argmax(expected))]


def test_container_handler_errors(extracted, tmp_path):
    cases = [(b"", "audio/wav"), (b"RIFF....this is not audio", "audio/wav"),
             (b"hello", "text/plain"), (b'{"features": [[1, 2, 3]]}', "application/json")]
    # Nothing listens on the discard port: a bad request must fail before TensorFlow Serving.
    errors, _ = run_driver(extracted / "code", "http://127.0.0.1:9/v1/models/model:predict", cases, tmp_path)
    assert [e["error"][0] for e in errors] == ["RequestError", "RequestError", "UnsupportedContentType",
                                              "RequestError"]
    assert "empty request body" in errors[0]["error"][1]
    assert "not audio" in errors[1]["error"][1]
    assert "unsupported content type 'text/plain'" in errors[2]["error"][1]
    assert "expected (batch, 49, 10)" in errors[3]["error"][1]


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
    np.testing.assert_array_equal(tfserving.predictions(b'{"predictions": [{"probs": [0.5, 0.5]}]}'),
                                  [[0.5, 0.5]])
    with pytest.raises(ValueError, match="without predictions"):
        tfserving.predictions(b'{"error": "boom"}')


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
    assert result.stderr.startswith("sagemaker-deploy: error: deploy.bucket is empty")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert not (work / "models/sagemaker").exists()

    compose_params(work / "params.yaml", "deploy.enabled=true", "deploy.bucket=b")
    result = run_stage(work, offline_env())
    assert result.returncode == 2 and f"no execution role: export {ROLE_ENV}=" in result.stderr
    result = run_stage(work, offline_env(**{ROLE_ENV: "my-role"}))
    assert result.returncode == 2 and f"{ROLE_ENV}: 'my-role' is not an IAM role ARN" in result.stderr

    shutil.rmtree(work / "models/saved_model")
    compose_params(work / "params.yaml")
    result = run_stage(work, offline_env())
    assert result.returncode == 2 and "saved_model.pb; run `dvc repro train`" in result.stderr
    assert "Traceback" not in result.stderr
