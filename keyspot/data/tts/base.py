"""What the speech engines share: the voice spec, the errors, and running a
call in a forked child."""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import pickle
import struct
import subprocess
import sys
import traceback

from keyspot.data.source import SourceError


class MissingToolError(SourceError):
    """A speech engine is not installed."""


class TTSError(RuntimeError):
    """The engine failed on one text (an error, or no audio)."""


class ZygoteProcess:
    """A helper script (espeak_zygote.py, pico_zygote.py) run by this
    Python: a JSON request per line in, a status byte, a little-endian
    uint32 length and the payload out. Its first answer is a hello."""

    def __init__(self, script: str, args: list[str], engine: str):
        self.engine = engine
        self.process = subprocess.Popen([sys.executable, script, *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        atexit.register(self.close)

    def ask(self, request: dict) -> tuple[int, bytes]:
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            return self._read()
        except (BrokenPipeError, EOFError):
            raise TTSError(f"{self.engine}'s process ended") from None

    def _read(self) -> tuple[int, bytes]:
        head = self.process.stdout.read(5)
        if len(head) < 5:
            raise EOFError
        status, length = struct.unpack("<BI", head)
        payload = self.process.stdout.read(length)
        if len(payload) < length:
            raise EOFError
        return status, payload

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


@dataclasses.dataclass(frozen=True)
class Voice:
    engine: str   # "espeak", "flite" or "pico"
    name: str     # e.g. "en-us+f3", "slt", "en-US"

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def in_fresh_process(fn, *args):
    """fn(*args) in a child forked from this process, its result returned;
    a TTSError (or any other error, as a TTSError) raised there is raised here.
    Nothing the child does changes this process's state."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: never returns
        status = 0
        try:
            os.close(read)
            try:
                payload = pickle.dumps((True, fn(*args)))
            except TTSError as err:
                payload = pickle.dumps((False, str(err)))
            except BaseException:   # report, never raise out of a forked child
                payload = pickle.dumps((False, traceback.format_exc(limit=3).strip().splitlines()[-1]))
            with os.fdopen(write, "wb") as pipe:
                pipe.write(payload)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        raise TTSError(f"the engine's process died ({_describe(status)})")
    ok, value = pickle.loads(payload)
    if not ok:
        raise TTSError(value)
    return value


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
