"""`keyspot serve`: the model behind gunicorn, on the SageMaker container's port.

gunicorn's pre-fork model: one arbiter process, `workers` worker processes,
each with its own interpreter and THREADS threads that take turns at it.
Threads, so that a client that sends its body slowly (each request has
keyspot.serve.app.BODY_TIMEOUT_S to send it) holds one thread, not a whole
worker, and `/ping` keeps answering. The model is resolved, converted when
needed and checked once in the arbiter; every worker then builds its
interpreter from those bytes after the fork.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from keyspot import recognizer as rec
from keyspot.cpu import cores
from keyspot.errors import UserError
from keyspot.features import FeatureSpec
from keyspot.schema import Recognizer
from keyspot.serve import app as app_mod
from keyspot.serve.handler import DEFAULT_MAX_CLIP_SECONDS
from keyspot.tflite_runner import ModelError, TFLiteRunner


class ServeError(UserError, RuntimeError):
    """The server cannot start; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0                 # 0: one per CPU core
    model_dir: Path = Path("models")
    spec: Path | None = None         # default: <model_dir>/code/spec.json or data/features/spec.json
    model: Path | None = None        # a .tflite file instead of the model folder's
    int8: bool = False
    max_body_bytes: int = app_mod.DEFAULT_MAX_BODY_BYTES
    max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS
    timeout_s: int = 30
    # The generated firmware folder whose recognizer_config.h /listen uses.
    firmware: Path = Path("firmware/psoc6/source/generated")


def spec_path(options: Options) -> Path:
    if options.spec is not None:
        return options.spec
    # An extracted model.tar.gz carries its own spec.
    packaged = options.model_dir / "code" / "spec.json"
    return packaged if packaged.is_file() else Path("data/features/spec.json")


def saved_model_dir(model_dir: Path) -> Path:
    """models/saved_model (the pipeline's) or 1/ (an extracted model.tar.gz)."""
    for candidate in (model_dir / "saved_model", model_dir / "1", model_dir):
        if (candidate / "saved_model.pb").is_file():
            return candidate
    raise ServeError(f"{model_dir}: no saved_model/ (nor an extracted model.tar.gz); run `dvc repro train` "
                     "(or `dvc pull`), or pass --model-dir or --model FILE.tflite")


def convert_saved_model(saved_model: Path) -> bytes:
    """The float TFLite model, converted in a separate process (keyspot.serve.convert)."""
    with tempfile.TemporaryDirectory(prefix="keyspot-serve-") as tmp:
        out = Path(tmp) / "model.tflite"
        result = subprocess.run([sys.executable, "-m", "keyspot.serve.convert", str(saved_model), str(out)],
                                capture_output=True, text=True)
        if result.returncode != 0 or not out.is_file():
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            raise ServeError(f"{saved_model}: conversion to TensorFlow Lite failed: "
                             f"{lines[-1] if lines else 'no message'}")
        return out.read_bytes()


def load_model(options: Options) -> tuple[FeatureSpec, bytes, str]:
    """(spec, TFLite model bytes, a description of what is served)."""
    path = spec_path(options)
    try:
        spec = FeatureSpec.load(path)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        raise ServeError(str(err) if isinstance(err, (FileNotFoundError, ValueError))
                         else f"{path}: not a feature spec ({err})") from None
    if not spec.mean or not spec.labels:
        raise ServeError(f"{path}: no labels or normalisation statistics; run `dvc repro features`")
    if options.model is not None:
        if not options.model.is_file():
            raise ServeError(f"{options.model}: no such model file")
        model, name = options.model.read_bytes(), str(options.model)
    elif options.int8:
        source = options.model_dir / "model_int8.tflite"
        if not source.is_file():
            raise ServeError(f"{source}: no int8 model; run `dvc repro quantize` (or `dvc pull`)")
        model, name = source.read_bytes(), str(source)
    else:
        source = saved_model_dir(options.model_dir)
        print(f"keyspot serve: converting {source} to a float TensorFlow Lite model", file=sys.stderr)
        model, name = convert_saved_model(source), f"{source} (float TFLite)"
    try:
        runner = TFLiteRunner.litert(model).check_spec(spec)  # fail here, once, rather than in every worker
    except ModelError as err:
        raise ServeError(f"{name}: {err}") from None
    return spec, model, f"{name}, {runner.kind}"


def load_recognizer(options: Options, spec: FeatureSpec) -> tuple[rec.RecognizerParams, str]:
    """The board's recognizer for /listen, from the generated firmware folder;
    without one, the firmware's defaults, and the source says so."""
    header = options.firmware / rec.CONFIG_HEADER
    try:
        if header.is_file():
            params, source = rec.from_header(header), str(header)
        else:
            params = rec.from_settings(Recognizer(), spec.labels)
            source = f"defaults: no {header} (run `dvc repro c-export`, or pass --firmware)"
        # The mask by the served model's labels, as c-export finds them.
        params = params.replace(ignore_mask=rec.ignore_mask(spec.labels))
        return params.check(len(spec.labels)), source
    except rec.RecognizerError as err:
        raise ServeError(str(err)) from None


def check_port(host: str, port: int) -> None:
    """A clear message instead of gunicorn's retries when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as err:
            raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}; check --host") from None
        except OSError as err:
            fix = "pick another with --port" if err.errno == errno.EADDRINUSE else "check --host and --port"
            raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}; {fix}") from None


def _write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"error": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    gunicorn_util.write_nonblock(sock, head + body)


THREADS = 8
_error_page = threading.Lock()


class JsonErrorWorker(ThreadWorker):
    """A threaded worker that answers HTTP it cannot parse (a bad request line, header or
    Content-Length) in JSON, as the app answers everything else; gunicorn itself
    answers those, before the app sees them, with an HTML page."""

    def handle(self, conn):
        # A connection that ends here is closed "gracefully": gunicorn half-closes
        # it and reads until the client hangs up, for up to 2 s, and does that on
        # the worker's main thread, the one that accepts. Slow clients answered
        # 408 that keep their sockets open held /ping for 2 s each. Closing in
        # this request thread instead leaves the main thread's close a no-op.
        result = super().handle(conn)
        if result is False:
            conn.close(graceful=True)
        return result

    def handle_error(self, req, client, addr, exc):
        # gunicorn writes that page through gunicorn.util.write_error; the swap
        # is held by one thread at a time, and only error pages go through it.
        with _error_page:
            html_writer = gunicorn_util.write_error
            gunicorn_util.write_error = _write_json_error
            try:
                super().handle_error(req, client, addr, exc)
            finally:
                gunicorn_util.write_error = html_writer


class Server(BaseApplication):
    def __init__(self, options: Options, spec: FeatureSpec, model: bytes, description: str,
                 recognizer: tuple[rec.RecognizerParams, str]):
        self.options, self.spec, self.model, self.description = options, spec, model, description
        self.recognizer = recognizer
        super().__init__()

    def load_config(self):
        o = self.options
        settings = {
            "bind": f"[{o.host}]:{o.port}" if ":" in o.host else f"{o.host}:{o.port}",
            "workers": o.workers or cores(),
            "worker_class": JsonErrorWorker,
            "threads": THREADS,
            # One request per connection, as with sync workers: a request whose
            # body was refused unread is not followed by a wait for the rest of it.
            "keepalive": 0,
            "timeout": o.timeout_s,
            "graceful_timeout": 10,
            "proc_name": "keyspot-serve",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "preload_app": False,   # each worker builds its interpreter after the fork
            # gunicorn's control socket has one default path per user: a second
            # server on the machine would take over the first one's.
            "control_socket_disable": True,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):
        # Runs in each worker: the interpreter is the worker's own.
        runner = TFLiteRunner.litert(self.model).check_spec(self.spec)
        return app_mod.make_app(self.spec, runner, model=self.description,
                                max_body_bytes=self.options.max_body_bytes,
                                max_clip_seconds=self.options.max_clip_seconds,
                                recognizer=self.recognizer[0], recognizer_source=self.recognizer[1])


def serve(options: Options) -> None:
    """Run until SIGINT/SIGTERM. Raises ServeError before starting if it cannot."""
    if options.max_body_bytes < 1 or options.max_clip_seconds <= 0 or options.workers < 0:
        raise ServeError("--max-body-bytes and --max-clip-seconds must be positive, --workers at least 0")
    if not 0 <= options.port <= 65535:
        raise ServeError(f"--port {options.port}: a port is 0..65535")
    check_port(options.host, options.port)
    spec, model, description = load_model(options)
    recognizer = load_recognizer(options, spec)
    print(f"keyspot serve: {description}; labels {', '.join(spec.labels)}", file=sys.stderr)
    print(f"keyspot serve: recognizer for /listen from {recognizer[1]}", file=sys.stderr)
    print(f"keyspot serve: http://{options.host}:{options.port}/ (POST /invocations, POST /listen, GET /ping)",
          file=sys.stderr)
    Server(options, spec, model, description, recognizer).run()
