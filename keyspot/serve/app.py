"""The WSGI application of `keyspot serve`: the SageMaker container contract and a web page.

    GET  /ping         200 once the model is loaded (SageMaker's health check)
    POST /invocations  a clip or features in, {"predictions": [...]} out (keyspot.serve.handler)
    POST /listen       a piece of a live stream in, scores and detections out (keyspot.serve.listening)
    GET  /             the page to upload or record a clip, or to listen (static/index.html)
    GET  /info         labels, clip length, limits and the recognizer, for the page

Every answer is JSON except the page. A request that cannot be served gets
a 4xx with {"error": ...}; the worker goes on serving.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from keyspot.features import FeatureSpec
from keyspot.recognizer import RecognizerParams
from keyspot.serve import handler
from keyspot.serve.handler import RequestError, TooLarge
from keyspot.tflite_runner import TFLiteRunner

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/static/page.js": ("page.js", "text/javascript; charset=utf-8"),
         "/static/listen.js": ("listen.js", "text/javascript; charset=utf-8"),
         "/static/capture.js": ("capture.js", "text/javascript; charset=utf-8")}
DEFAULT_MAX_BODY_BYTES = 4 << 20
# A body over the limit is read and dropped up to this many bytes, so that
# the client, still sending, reads our 413 instead of a reset connection; a
# larger declared length is refused at once, before any of it is read.
DRAIN_BYTES = 64 << 20
CHUNK = 1 << 16
# The whole body must arrive within this, well under the worker timeout, so
# that clients that stall or lie about Content-Length cannot hold a worker.
BODY_TIMEOUT_S = 5.0

log = logging.getLogger("keyspot.serve")

Predict = Callable[[np.ndarray], np.ndarray]
StartResponse = Callable[..., object]


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.headers = status, list(headers)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
            415: "Unsupported Media Type", 500: "Internal Server Error"}
CLOSE = (("Connection", "close"),)


def _respond(start_response: StartResponse, status: int, body: bytes, content_type: str,
             headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, '')}".rstrip(),
                   [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
    return [body]


def _json(start_response: StartResponse, status: int, data, headers=()) -> list[bytes]:
    # allow_nan=False: NaN is not JSON; a non-finite number here is a bug, never sent.
    return _respond(start_response, status, json.dumps(data, allow_nan=False).encode(), "application/json",
                    headers)


def read_body(environ: dict, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The request body, at most `max_bytes` of it, or TooLarge (413); one that
    does not arrive within `timeout_s` is HttpError 408, a malformed one 400."""
    stream = environ["wsgi.input"]
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(timeout_s)
    length = environ.get("CONTENT_LENGTH") or ""
    try:
        if length:
            try:
                size = int(length)
            except ValueError:
                raise HttpError(400, f"Content-Length {length!r} is not a number", CLOSE) from None
            if size > max_bytes:
                if size <= DRAIN_BYTES:
                    _drain(stream, size)
                raise TooLarge(f"body of {size} bytes is over this server's limit of {max_bytes} bytes "
                               "(keyspot serve --max-body-bytes)")
            body = stream.read(size) if size else b""
            if len(body) < size:
                raise HttpError(400, f"body ended after {len(body)} of the {size} bytes Content-Length "
                                "declares", CLOSE)
            return body
        # No length: a chunked body (or none); read one byte past the limit to tell.
        body = stream.read(max_bytes + 1)
        if len(body) > max_bytes:
            # The rest of it too, as for a declared length: a client still
            # sending its chunks otherwise meets a reset, not our 413.
            _drain(stream, DRAIN_BYTES)
    except TimeoutError:
        raise HttpError(408, f"the body did not arrive within {timeout_s:g} s", CLOSE) from None
    except (HttpError, TooLarge):
        raise
    except Exception as err:   # gunicorn's parser on a malformed chunked body, a reset connection
        raise HttpError(400, f"could not read the request body ({type(err).__name__})", CLOSE) from None
    if len(body) > max_bytes:
        raise TooLarge(f"body is over this server's limit of {max_bytes} bytes "
                       "(keyspot serve --max-body-bytes)")
    return body


def _drain(stream, size: int) -> None:
    left = min(size, DRAIN_BYTES)
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            break
        left -= len(chunk)


def make_app(spec: FeatureSpec, predict: Predict, *, model: str,
             max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
             max_clip_seconds: float = handler.DEFAULT_MAX_CLIP_SECONDS,
             recognizer: RecognizerParams | None = None, recognizer_source: str = ""):
    """A WSGI app answering with `predict` (keyspot.tflite_runner.TFLiteRunner or any
    callable of the same shape). `model` names what is served, for /info and logs.
    /listen runs `predict` with `recognizer` (from `recognizer_source`), when
    `predict` is a TFLiteRunner."""
    from keyspot.listen import TFLiteModel
    from keyspot.serve import listening

    listen_model = TFLiteModel(predict) if recognizer is not None and isinstance(predict, TFLiteRunner) else None
    pages = {path: ((STATIC / name).read_bytes(), content_type)
             for path, (name, content_type) in PAGES.items()}
    info = json.dumps({
        "model": model, "labels": list(spec.labels), "sample_rate": spec.sample_rate,
        "clip_seconds": spec.clip_samples / spec.sample_rate, "max_clip_seconds": max_clip_seconds,
        "max_body_bytes": max_body_bytes,
        "content_types": list(handler.CONTENT_TYPES),
        "listening": listen_model is not None,
        "recognizer": {**dataclasses.asdict(recognizer), "source": recognizer_source} if recognizer else None,
    }).encode()

    def invocations(environ) -> dict:
        body = read_body(environ, max_body_bytes)
        return handler.handle(body, environ.get("CONTENT_TYPE", ""), spec, predict,
                              max_clip_seconds=max_clip_seconds)

    def route(environ, start_response) -> list[bytes]:
        path, method = environ.get("PATH_INFO") or "/", environ["REQUEST_METHOD"]
        allowed = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",), "/listen": ("POST",),
                   "/info": ("GET", "HEAD"),
                   **{p: ("GET", "HEAD") for p in pages}}
        if path not in allowed:
            raise HttpError(404, f"no such path {path!r}; POST /invocations or GET /ping")
        if method not in allowed[path]:
            raise HttpError(405, f"{method} {path}: use {' or '.join(allowed[path])}",
                            [("Allow", ", ".join(allowed[path]))])
        if path == "/ping":
            return _json(start_response, 200, {"status": "ok"})
        if path == "/info":
            return _respond(start_response, 200, info, "application/json")
        if path in pages:
            body, content_type = pages[path]
            return _respond(start_response, 200, body, content_type, [("Cache-Control", "no-cache")])
        if path == "/listen":
            if listen_model is None:
                raise HttpError(404, "this server does not listen to streams (no recognizer)")
            body = read_body(environ, max_body_bytes)
            return _json(start_response, 200, listening.answer(body, environ.get("CONTENT_TYPE", ""), spec,
                                                               listen_model, recognizer))
        return _json(start_response, 200, invocations(environ))

    def app(environ, start_response):
        try:
            return route(environ, start_response)
        except TooLarge as err:
            return _json(start_response, err.status, {"error": str(err)}, CLOSE)
        except RequestError as err:
            return _json(start_response, err.status, {"error": str(err)})
        except HttpError as err:
            return _json(start_response, err.status, {"error": str(err)}, err.headers)
        except Exception as err:  # a bug, not the client's fault: say so, keep serving
            log.error("error serving %s %s\n%s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                      traceback.format_exc())
            # The type only: an exception's text may show objects and addresses of the server's.
            return _json(start_response, 500, {"error": f"internal error ({type(err).__name__}); "
                                                        "the server's log has the details"})

    return app
