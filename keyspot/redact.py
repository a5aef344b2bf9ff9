"""Credentials in URIs never reach a message: `scheme://user:password@host`
prints as `scheme://user:***@host`.

A tracking or remote URI may carry a password (MLFLOW_TRACKING_URI=
http://alice:secret@host); the libraries that fail on it put it in their
exceptions, warnings and log lines. `install()` makes the process's stderr
redact whatever Python writes there, tracebacks included.
"""

from __future__ import annotations

import re
import sys

_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@")


def redact(text: str) -> str:
    return _CREDENTIALS.sub(r"\1\2:***@", text)


class _RedactingStream:
    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def install() -> None:
    """Redact everything written to sys.stderr from now on (once per process)."""
    if not isinstance(sys.stderr, _RedactingStream):
        sys.stderr = _RedactingStream(sys.stderr)
