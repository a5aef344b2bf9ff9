"""`keyspot serve` as a real server: gunicorn workers on loopback, every content type,
every kind of bad request, and the server still serving after them.

The model is trained here in a few seconds on tones (one pitch per label),
so an answer can be checked for its label as well as its numbers.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

from keyspot import audio, features
from keyspot.features import FeatureSpec
from keyspot.serve import handler

REPO = Path(__file__).resolve().parents[1]
LABELS = ("_silence_", "_unknown_", "yes", "no")
PITCHES = {"_silence_": 200.0, "_unknown_": 700.0, "yes": 1500.0, "no": 3000.0}
MAX_BODY = 400_000
MAX_CLIP_SECONDS = 2.0


def tone(rate: int, seconds: float, hz: float, seed: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(seed)
    mono = 0.4 * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6)) + rng.normal(0, 0.03, t.shape)
    pcm = audio.to_int16(mono)
    return pcm if channels == 1 else np.stack([pcm] * channels, axis=1)


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, pcm, rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def build_workdir(root: Path) -> dict:
    """A pipeline-shaped folder: data/features/spec.json and models/saved_model of a
    tiny CNN trained to tell the four tones apart; also the float TFLite model."""
    import keras

    from keyspot.serve.convert import float_tflite

    bare = FeatureSpec(kind="mfcc", sample_rate=16000, clip_samples=16000, window_samples=480,
                       hop_samples=320, fft_size=512, mel_bins=40, mel_fmin=20.0, mel_fmax=7000.0,
                       num_mfcc=10, log_floor=1e-10, labels=LABELS)
    clips = np.stack([tone(16000, 1.0, PITCHES[label] * (1 + 0.02 * (i % 5 - 2)), 100 * k + i)
                      for k, label in enumerate(LABELS) for i in range(24)])
    y = np.repeat(np.arange(len(LABELS)), 24)
    raw = features.unnormalised(clips, bare)
    spec = dataclasses.replace(bare, mean=tuple(map(float, raw.mean(axis=(0, 1)))),
                               std=tuple(map(float, raw.std(axis=(0, 1)))))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((spec.num_frames, spec.num_coefficients, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = features.compute(clips, spec)[..., None]
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] == 1.0

    (root / "data/features").mkdir(parents=True)
    spec.save(root / "data/features/spec.json")
    model.export(str(root / "models/saved_model"), verbose=False)
    (root / "float.tflite").write_bytes(float_tflite(root / "models/saved_model"))
    return {"root": root, "spec": spec, "model": model}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`keyspot serve` in a subprocess on a free loopback port."""

    def __init__(self, cwd: Path, *args: str, workers: int = 2):
        self.port = free_port()
        self.log = cwd / f"serve-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keyspot.cli", "serve", "--port", str(self.port),
             "--workers", str(workers), *args],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"keyspot serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if self.request("GET", "/ping")[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"keyspot serve did not answer /ping:\n{self.log.read_text()}")

    def request(self, method: str, path: str, body=None, content_type: str | None = None,
                headers: dict | None = None, chunked: bool = False) -> tuple[int, bytes, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            hdrs = dict(headers or {})
            if content_type is not None:
                hdrs["Content-Type"] = content_type
            conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()

    def invoke(self, body, content_type) -> tuple[int, dict]:
        status, data, headers = self.request("POST", "/invocations", body, content_type)
        assert headers["Content-Type"] == "application/json", data[:200]
        return status, json.loads(data)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return build_workdir(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(workdir):
    # No --model-dir or --spec: the pipeline's models/ and data/features/spec.json.
    srv = Server(workdir["root"], "--max-body-bytes", str(MAX_BODY),
                 "--max-clip-seconds", str(MAX_CLIP_SECONDS))
    yield srv
    srv.stop()


def reference(workdir, pcm: np.ndarray) -> np.ndarray:
    """What the trained Keras model says about int16 clips at the spec's rate."""
    spec = workdir["spec"]
    return workdir["model"].predict(features.compute(pcm, spec)[..., None], verbose=0)


def probabilities(answer: dict) -> np.ndarray:
    return np.array([[p["probabilities"][label] for label in LABELS] for p in answer["predictions"]])


# --- the contract ------------------------------------------------------------------------------

def test_ping_info_and_page(server, workdir):
    status, body, headers = server.request("GET", "/ping")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, body, _ = server.request("GET", "/info")
    info = json.loads(body)
    assert status == 200 and info["labels"] == list(LABELS) and info["clip_seconds"] == 1.0
    assert info["max_body_bytes"] == MAX_BODY and info["max_clip_seconds"] == MAX_CLIP_SECONDS
    assert "float TFLite" in info["model"] and "float32" in info["model"]
    status, body, headers = server.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b'id="file"' in body
    status, body, headers = server.request("GET", "/static/page.js")
    assert status == 200 and b"/invocations" in body


@pytest.mark.parametrize(("rate", "channels", "seconds"), [(16000, 1, 1.0), (44100, 2, 0.8), (8000, 1, 1.5)])
def test_wav_of_any_rate_and_channels(server, workdir, rate, channels, seconds):
    pcm = tone(rate, seconds, PITCHES["yes"], 7, channels)
    status, answer = server.invoke(wav_bytes(pcm, rate), "audio/wav")
    assert status == 200, answer
    (prediction,) = answer["predictions"]
    assert list(prediction["probabilities"]) == list(LABELS)
    clip = audio.load_clip(wav_bytes(pcm, rate), 16000, 16000)
    expected = reference(workdir, clip)
    np.testing.assert_allclose(probabilities(answer), expected, atol=1e-5)
    assert prediction["label"] == LABELS[int(expected.argmax())]
    if rate >= 16000:  # 8 kHz audio lacks the band above 4 kHz the tones were trained with
        assert prediction["label"] == "yes"


def test_every_content_type_gives_the_same_answer(server, workdir):
    spec = workdir["spec"]
    pcm = np.stack([tone(16000, 1.0, PITCHES[label], 11 + i) for i, label in enumerate(("no", "yes"))])
    feats = features.compute(pcm, spec)
    expected = reference(workdir, pcm)
    bodies = [
        (json.dumps({"pcm": pcm.tolist()}).encode(), "application/json"),
        (json.dumps({"pcm": pcm.tolist(), "sample_rate": 16000}).encode(), "application/json; charset=utf-8"),
        (json.dumps({"features": feats.tolist()}).encode(), "application/json"),
        (npy_bytes(pcm), "application/x-npy"),
        (npy_bytes(feats), "application/x-npy"),
        (npy_bytes(feats[..., None].astype(np.float64)), "application/x-npy"),
    ]
    for body, content_type in bodies:
        status, answer = server.invoke(body, content_type)
        assert status == 200, (content_type, answer)
        assert [p["label"] for p in answer["predictions"]] == ["no", "yes"], content_type
        np.testing.assert_allclose(probabilities(answer), expected, atol=1e-5, err_msg=content_type)
    # One clip, unbatched, and PCM at another rate.
    status, answer = server.invoke(json.dumps({"features": feats[1].tolist()}).encode(), "application/json")
    assert status == 200 and [p["label"] for p in answer["predictions"]] == ["yes"]
    low = tone(8000, 1.0, PITCHES["no"], 3)
    status, answer = server.invoke(json.dumps({"pcm": low.tolist(), "sample_rate": 8000}).encode(),
                                   "application/json")
    assert status == 200 and answer["predictions"][0]["label"] == "no"


def test_chunked_upload(server):
    body = wav_bytes(tone(16000, 1.0, PITCHES["_unknown_"], 5), 16000)
    pieces = iter([body[:1000], body[1000:20000], body[20000:]])
    status, data, _ = server.request("POST", "/invocations", pieces, "audio/wav", chunked=True)
    assert status == 200 and json.loads(data)["predictions"][0]["label"] == "_unknown_"


# --- bad requests: 4xx with a JSON error, never a 500, and the server goes on --------------------

LONG_CLIP = wav_bytes(tone(16000, 3.0, 440, 1), 16000)   # 96 kB: under the body limit, over 2 s
BAD_REQUESTS = [
    ("empty body", b"", "audio/wav", 400, "empty request body"),
    ("not audio", b"RIFF\x00\x00\x00\x00WAVEthis is no audio", "audio/wav", 400, "not audio"),
    ("text is not audio", b"hello", "audio/x-wav", 400, "not audio"),
    ("unsupported type", b"hello", "text/plain", 415, "unsupported content type 'text/plain'"),
    ("no content type", b"hello", None, 415, "unsupported content type ''"),
    ("multipart form", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415, "unsupported"),
    ("over the size limit", b"\0" * (MAX_BODY + 1), "audio/wav", 413, "limit of 400000 bytes"),
    ("clip too long", LONG_CLIP, "audio/wav", 413, "clip is 3.0 s long"),
    ("pcm too long", json.dumps({"pcm": [0] * 6000, "sample_rate": 2000}).encode(), "application/json",
     413, "clip is 3.0 s long"),
    ("silly sample rate", wav_bytes(np.zeros(100, np.int16), 999_999), "audio/wav", 400, "sample rate"),
    ("malformed JSON", b'{"pcm": [1, 2,', "application/json", 400, "not JSON"),
    ("JSON not an object", b"[1, 2, 3]", "application/json", 400, 'either "pcm" or "features"'),
    ("pcm not int16", b'{"pcm": [0.5, 1]}', "application/json", 400, "int16 samples"),
    ("ragged pcm", b'{"pcm": [[1, 2], [3]]}', "application/json", 400, "equal lengths"),
    ("pcm of text", b'{"pcm": "loud"}', "application/json", 400, "list of numbers"),
    ("wrong feature shape", json.dumps({"features": np.zeros((10, 49)).tolist()}).encode(),
     "application/json", 400, "expected (batch, 49, 10)"),
    ("NaN features", b'{"features": [[NaN]]}', "application/json", 400, "expected (batch, 49, 10)"),
    ("malformed npy", b"\x93NUMPY\x01\x00garbage", "application/x-npy", 400, "not a .npy array"),
    ("npy of the wrong shape", npy_bytes(np.zeros((3, 5), np.float32)), "application/x-npy", 400,
     "expected (batch, 49, 10)"),
    ("npy of int64", npy_bytes(np.zeros(16000, np.int64)), "application/x-npy", 400, "int16 PCM or float"),
    ("pickled npy", npy_bytes(np.array([{"a": 1}], dtype=object)), "application/x-npy", 400,
     "not a .npy array"),
]


@pytest.mark.parametrize(("name", "body", "content_type", "status", "message"), BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_gets_4xx_json(server, name, body, content_type, status, message):
    got, answer = server.invoke(body, content_type)
    assert got == status, answer
    assert set(answer) == {"error"} and message in answer["error"]
    assert " object at 0x" not in answer["error"]   # the request, never a Python object


def test_a_decoder_message_about_a_stream_names_the_body(monkeypatch):
    """libsndfile's errors name the stream it was given ("Error opening
    <_io.BytesIO object at 0x...>"): the user reads "audio body" instead."""
    def refuse(stream, **kwargs):
        raise RuntimeError(f"Error opening {stream!r}: Format not recognised.")

    monkeypatch.setattr(soundfile, "read", refuse)
    with pytest.raises(audio.AudioError) as err:
        audio.decode(b"RIFF....WAVEjunk")
    assert str(err.value) == "audio body: not readable audio (Error opening audio body: Format not recognised.)"


def test_bad_methods_paths_and_lengths(server):
    for method, path, status in [("GET", "/invocations", 405), ("POST", "/ping", 405),
                                 ("GET", "/nowhere", 404), ("DELETE", "/", 405)]:
        got, body, headers = server.request(method, path)
        assert got == status and "error" in json.loads(body), (method, path)
        if status == 405:
            assert "Allow" in headers
    # HTTP that gunicorn refuses before the app: JSON all the same.
    for raw in (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n",
                b"NONSENSE\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ") and b"Content-Type: application/json" in head, answer
        assert json.loads(body)["error"]
    # Chunked: no Content-Length to refuse it by. Far more than the limit, so
    # that the client is still sending when the server has seen enough.
    over = iter([b"\0" * 100_000] * 40)
    got, body, _ = server.request("POST", "/invocations", over, "audio/wav", chunked=True)
    assert got == 413 and "limit" in json.loads(body)["error"]


def test_keeps_serving_after_bad_requests(server, workdir):
    good = wav_bytes(tone(16000, 1.0, PITCHES["no"], 21), 16000)

    def one(i):
        name, body, content_type, status, _ = BAD_REQUESTS[i % len(BAD_REQUESTS)]
        bad = server.invoke(body, content_type)[0]
        ok, answer = server.invoke(good, "audio/wav")
        return bad == status and ok == 200 and answer["predictions"][0]["label"] == "no"

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(2 * len(BAD_REQUESTS))))
    assert server.proc.poll() is None
    log = server.log.read_text()
    # Bad requests never reached the 500 path, and no worker died or was replaced.
    assert "Traceback" not in log and "internal error" not in log
    assert log.count("Booting worker") == 2, log


# --- starting up ---------------------------------------------------------------------------------

def test_serves_a_tflite_file_and_an_extracted_package(workdir, tmp_path):
    """--model FILE.tflite, and --model-dir of an extracted model.tar.gz (the SageMaker artifact)."""
    import tarfile

    from keyspot.deploy import package

    root = workdir["root"]
    package.build(root / "models/saved_model", root / "data/features/spec.json", tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        tar.extractall(tmp_path / "opt/ml/model", filter="data")
    pcm = tone(16000, 1.0, PITCHES["_silence_"], 9)
    expected = reference(workdir, pcm[None])
    for args in (["--model", str(root / "float.tflite"), "--spec", str(root / "data/features/spec.json")],
                 ["--model-dir", str(tmp_path / "opt/ml/model")]):
        srv = Server(tmp_path, *args, workers=1)
        try:
            status, answer = srv.invoke(wav_bytes(pcm, 16000), "audio/wav")
        finally:
            srv.stop()
        assert status == 200 and answer["predictions"][0]["label"] == "_silence_", args
        np.testing.assert_allclose(probabilities(answer), expected, atol=1e-5)


def test_startup_errors_are_one_line(workdir, tmp_path):
    def serve(*args, cwd=tmp_path):
        return subprocess.run([sys.executable, "-m", "keyspot.cli", "serve", "--port", str(free_port()), *args],
                              cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, timeout=120)

    result = serve()
    assert result.returncode == 2 and "data/features/spec.json: no feature spec" in result.stderr
    result = serve("--spec", str(workdir["root"] / "data/features/spec.json"))
    assert result.returncode == 2 and "no saved_model/" in result.stderr
    result = serve("--int8", cwd=workdir["root"])
    assert result.returncode == 2 and "model_int8.tflite: no int8 model" in result.stderr
    (tmp_path / "junk.tflite").write_bytes(b"not a model")
    result = serve("--model", str(tmp_path / "junk.tflite"), "--spec", str(workdir["root"] / "data/features/spec.json"))
    assert result.returncode == 2 and "junk.tflite: not a TensorFlow Lite model" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "keyspot.cli", "serve", "--port", str(port)],
                                cwd=workdir["root"], env={**os.environ, "PYTHONPATH": str(REPO)},
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_int8_runner_agrees_with_float(workdir):
    """The int8 model (what --int8 serves) through the same runner, against the float one."""
    from keyspot.quantize import convert
    from keyspot.tflite_runner import TFLiteRunner

    spec, root = workdir["spec"], workdir["root"]
    pcm = np.stack([tone(16000, 1.0, PITCHES[label], 40 + i) for i, label in enumerate(LABELS)])
    x = handler.model_input(features.compute(pcm, spec))
    int8 = TFLiteRunner.litert(convert(root / "models/saved_model", x)).check_spec(spec)
    floats = TFLiteRunner.litert((root / "float.tflite").read_bytes()).check_spec(spec)
    assert (int8.kind, floats.kind) == ("int8", "float32")
    np.testing.assert_allclose(floats(x), workdir["model"].predict(x, verbose=0), atol=1e-5)
    assert (int8(x).argmax(axis=1) == np.arange(len(LABELS))).all()
    np.testing.assert_allclose(int8(x), floats(x), atol=0.1)
