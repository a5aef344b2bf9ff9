"""Serving throughput and latency: `keyspot serve` against the tutorial way.

The tutorial way (the Flask app of most keyword-spotting tutorials): Flask's
development server, each upload written to a temporary file, read back with
`librosa.load`, MFCCs from `librosa.feature.mfcc`, then keras `model.predict`
on the model.keras. keyspot's way: `keyspot serve` (gunicorn workers, the
float TFLite conversion of the same model's SavedModel, keyspot.features).

Both get the same WAV clips (the test split of data/raw, else generated
tones) from this process, which drives one server at a time with
`--concurrency` client threads for `--seconds`, after a warm-up. It checks
that both servers give the same labels, then prints p50/p99 latency,
requests per second and the ratio.

    python bench/serve_bench.py                  # the pipeline's models/ and data/
    python bench/serve_bench.py --workers 4 --concurrency 16 --seconds 20

Needs Flask (pyproject's `bench` extra) for the baseline.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 10.0


# --- the baseline server (runs in its own process: `serve_bench.py --tutorial-server`) ------------

def tutorial_server(port: int, model_path: str, spec_path: str) -> None:
    """The tutorial's app, with keyspot's feature parameters so that it computes the
    same features (and so the same labels) as keyspot does."""
    import tempfile

    import keras
    import librosa
    from flask import Flask, jsonify, request

    spec = json.loads(Path(spec_path).read_text())
    model = keras.models.load_model(model_path)
    mean, std = np.array(spec["mean"], np.float32), np.array(spec["std"], np.float32)
    app = Flask(__name__)

    @app.route("/predict", methods=["POST"])
    def predict():
        upload = request.files["file"] if "file" in request.files else None
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as tmp:
            if upload is not None:
                upload.save(tmp)
            else:
                tmp.write(request.get_data())
        try:
            signal_, sr = librosa.load(tmp.name, sr=spec["sample_rate"])
        finally:
            os.remove(tmp.name)
        signal_ = librosa.util.fix_length(signal_, size=spec["clip_samples"])
        # librosa.feature.mfcc(y=...) would take power_to_db with an 80 dB range; keyspot's
        # spec has its own floor, so the mel spectrogram is made first, as that call does.
        mel = librosa.feature.melspectrogram(
            y=signal_, sr=sr, n_fft=spec["fft_size"], hop_length=spec["hop_samples"],
            win_length=spec["window_samples"], window="hann", center=False, n_mels=spec["mel_bins"],
            fmin=spec["mel_fmin"], fmax=spec["mel_fmax"], power=2.0)
        log_mel = librosa.power_to_db(mel, ref=1.0, amin=spec["log_floor"], top_db=None)
        # keyspot's log-mel features are these bands in dB; its MFCCs their DCT.
        coefficients = log_mel if spec.get("kind") == "log_mel" else \
            librosa.feature.mfcc(S=log_mel, n_mfcc=spec["num_mfcc"], dct_type=2, norm="ortho")
        x = ((coefficients.T - mean) / std)[np.newaxis, ..., np.newaxis]
        probs = model.predict(x)[0]
        return jsonify({"label": spec["labels"][int(np.argmax(probs))],
                        "probabilities": {k: float(v) for k, v in zip(spec["labels"], probs, strict=True)}})

    app.run(host="127.0.0.1", port=port)  # the development server, threaded as Flask's default


# --- the load generator ---------------------------------------------------------------------------

def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "audio/wav"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def label_of(path: str, body: bytes) -> str:
    data = json.loads(body)
    return data["predictions"][0]["label"] if path == "/invocations" else data["label"]


def drive(port: int, path: str, clips: list[bytes], concurrency: int, seconds: float) -> dict:
    """`concurrency` threads posting clips round-robin for `seconds`; latencies in ms."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        i = k
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                status, _ = post(port, path, clips[i % len(clips)])
            except OSError:
                status = 0
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1
            i += concurrency

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"requests": len(latencies), "errors": errors[0], "seconds": round(wall, 2),
            "rps": len(latencies) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


# --- setting up ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, port: int, path: str, body: bytes, name: str, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"serve_bench: {name} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, answer = post(port, path, body)
        except OSError:   # not listening yet
            time.sleep(0.5)
            continue
        if status == 200:
            return
        # Up, but failing: waiting would not help.
        sys.exit(f"serve_bench: {name} answered {status}: {answer[:300]!r}; see {log}")
    sys.exit(f"serve_bench: {name} did not answer within 300 s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def load_clips(raw: Path, count: int, spec: dict) -> tuple[list[bytes], str]:
    """WAV bytes of the test split of data/raw, or generated tones if there is none."""
    manifest = raw / "manifest.csv"
    if manifest.is_file():
        with manifest.open() as f:
            rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
        if rows:
            step = max(1, len(rows) // count)
            picked = rows[::step][:count]
            return [(raw / r["path"]).read_bytes() for r in picked], f"{len(picked)} test clips of {raw}"
    import soundfile

    rate, rng, clips = spec["sample_rate"], np.random.default_rng(0), []
    t = np.arange(spec["clip_samples"]) / rate
    for _ in range(count):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t) + rng.normal(0, 0.02, t.shape)
        buf = io.BytesIO()
        soundfile.write(buf, np.clip(x * 32767, -32768, 32767).astype(np.int16), rate, format="WAV")
        clips.append(buf.getvalue())
    return clips, f"{count} generated tones (no {manifest})"


def main() -> int:
    from keyspot.cpu import cores

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="models", help="with saved_model/ and model.keras")
    parser.add_argument("--spec", default="data/features/spec.json")
    parser.add_argument("--raw", default="data/raw", help="clips: the test split of its manifest.csv")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--workers", type=int, default=cores(), help="keyspot serve --workers")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per server")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--tutorial-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_dir, spec_path = Path(args.model_dir), Path(args.spec)
    if args.tutorial_server:
        tutorial_server(args.tutorial_server, str(model_dir / "model.keras"), str(spec_path))
        return 0
    for need in (spec_path, model_dir / "model.keras", model_dir / "saved_model" / "saved_model.pb"):
        if not need.is_file():
            sys.exit(f"serve_bench: {need}: missing; run `dvc repro train` (or `dvc pull`) first")
    spec = json.loads(spec_path.read_text())
    clips, where = load_clips(Path(args.raw), args.clips, spec)

    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    servers = {
        "keyspot serve": ("/invocations", [sys.executable, "-m", "keyspot.cli", "serve", "--workers",
                                           str(args.workers), "--model-dir", str(model_dir), "--spec",
                                           str(spec_path), "--port"]),
        "tutorial Flask": ("/predict", [sys.executable, str(Path(__file__).resolve()), "--model-dir",
                                        str(model_dir), "--spec", str(spec_path), "--tutorial-server"]),
    }
    print(f"serve_bench: {where}; {args.concurrency} concurrent clients, {args.seconds:g} s per server, "
          f"keyspot serve with {args.workers} workers, {cores()} CPU cores", flush=True)
    results, labels = {}, {}
    for name, (path, cmd) in servers.items():
        port = free_port()
        log = logs / f"serve_bench-{name.split()[0].lower()}-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*cmd, str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_up(proc, port, path, clips[0], name, log)
            labels[name] = []
            for clip in clips:  # warm-up, and every clip's label
                status, body = post(port, path, clip)
                if status != 200:
                    sys.exit(f"serve_bench: {name} answered {status}: {body[:300]!r}")
                labels[name].append(label_of(path, body))
            results[name] = drive(port, path, clips, args.concurrency, args.seconds)
        finally:
            stop(proc)
        r = results[name]
        print(f"  {name:15s} {r['rps']:8.1f} req/s   p50 {r['p50_ms']:8.1f} ms   p99 {r['p99_ms']:8.1f} ms"
              f"   ({r['requests']} requests, {r['errors']} errors)", flush=True)

    ours, theirs = results["keyspot serve"], results["tutorial Flask"]
    agree = np.mean([a == b for a, b in zip(labels["keyspot serve"], labels["tutorial Flask"], strict=True)])
    ratio = ours["rps"] / theirs["rps"]
    print(f"labels agree on {100 * agree:.0f}% of {len(clips)} clips")
    print(f"ratio: {ratio:.1f}x requests per second, p50 {theirs['p50_ms'] / ours['p50_ms']:.1f}x lower, "
          f"p99 {theirs['p99_ms'] / ours['p99_ms']:.1f}x lower "
          f"(target {TARGET_RATIO:g}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "ratio_rps": ratio,
                                               "label_agreement": agree, "clips": where}, indent=2) + "\n")
    errors = ours["errors"] + theirs["errors"]
    return 0 if errors == 0 and agree >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
