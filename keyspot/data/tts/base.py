"""What the speech engines share: the voice spec, the errors, and running a
call in a forked child."""

from __future__ import annotations

import dataclasses
import os
import pickle
import traceback

from keyspot.data.source import SourceError


class MissingToolError(SourceError):
    """A speech engine is not installed."""


class TTSError(RuntimeError):
    """The engine failed on one text (an error, or no audio)."""


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
