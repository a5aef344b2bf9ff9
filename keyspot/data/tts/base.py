"""What the speech engines share: the voice spec, the errors, running a call
in a forked child, and running WebAssembly engines."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import importlib.metadata
import json
import os
import pickle
import struct
import subprocess
import sys
import traceback

import numpy as np

from keyspot import audio
from keyspot.data.source import SourceError


class MissingToolError(SourceError):
    """A speech engine is not installed."""


class TTSError(RuntimeError):
    """The engine failed on one text (an error, or no audio)."""


@functools.cache
def package_version(engine: str, package: str) -> str:
    """The installed version of a pinned Python package an engine needs.
    Cached: the speech cache's key asks for it on every clip, and a lookup
    reads the environment's package metadata (about a millisecond)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise MissingToolError(f"{engine}: the Python package {package} is not installed; "
                               "run `make setup` (it installs requirements.lock)") from None


def pinned_program(engine: str, packages) -> str:
    """`engine (package version, ...)`: what a take's samples depend on."""
    return f"{engine} ({', '.join(f'{p} {package_version(engine, p)}' for p in packages)})"


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
    engine: str   # a key of tts.ENGINES: "espeak", "flite", "pico", "piper", "kokoro", "gnuspeech"
    name: str     # e.g. "en-us+f3", "slt", "en-US", "en_US-joe-medium", "female"

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


def compile_wasm(engine: str, path):
    """wasmtime, an engine and the compiled module at `path` (an engine's
    pinned WebAssembly module); MissingToolError, saying how to install it,
    when either is missing."""
    if not path.is_file():
        raise MissingToolError(f"{engine}: {path} is missing; run `make setup` "
                               "(or `python -m keyspot.data.tts.install`) to install it")
    try:
        import wasmtime
    except ImportError:
        raise MissingToolError(f"{engine}: the Python package wasmtime is not installed; run `make setup`") from None
    compiler = wasmtime.Engine()
    return wasmtime, compiler, wasmtime.Module.from_file(compiler, str(path))


_wasm_leaf = False


def run_wasm_here() -> None:
    """Declare this process a leaf, one that forks no process that runs a
    WebAssembly engine (the dataset's workers): they then run here."""
    global _wasm_leaf
    _wasm_leaf = True


def run_wasm(fn, *args):
    """fn(*args), a call that instantiates and runs a WebAssembly module (flite,
    GnuSpeech). A process that has run a wasmtime module cannot fork a child
    that runs one (the child hangs inside wasmtime), and the dataset's
    workers are forked from the process that checks the voices. So the call
    runs in a forked child unless this process was declared a leaf; the
    caller compiles its module beforehand, here, once for the process tree."""
    return fn(*args) if _wasm_leaf else in_fresh_process(fn, *args)


def decode_wav(engine: str, wav: bytes | None) -> tuple[np.ndarray, int]:
    """An engine's WAV output as mono float32 samples and their rate."""
    try:
        samples, rate = audio.decode(wav or b"")
    except audio.AudioError as err:
        raise TTSError(f"{engine} wrote no usable audio ({err})") from None
    return audio.to_mono(samples), rate


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
