"""Folders as tar archives: packed reproducibly, unpacked safely.

The local side packs each input folder (data/raw, data/features) into one
uncompressed tar (audio and .npz hardly compress): entries sorted, times,
owners and modes fixed, so the same files always give the same bytes and so
the same sha256, which names the object in S3. One object per input also
means one request to find out whether it is already there.

Both sides unpack archives that came from S3 (an input channel in the job;
model.tar.gz and output.tar.gz here), refusing any member that is not a plain
file or folder or would land outside the target folder.

Standard library only: the job imports it before anything else.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path, PurePosixPath


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, f):
        self.f, self.digest = f, hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)
        return self.f.write(data)


def pack(folder: Path | str, dest: Path | str) -> str:
    """Write every file under `folder` into the tar `dest`; return its sha256."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: missing; run the stage that writes it (`dvc repro`)")
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    with open(dest, "wb") as raw:
        writer = _HashingWriter(raw)
        # "w|": a stream, written front to back without seeking, so it can be hashed on the way.
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for name, path in files:
                info = tarfile.TarInfo(name)
                info.size = path.stat().st_size
                info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return writer.digest.hexdigest()


def unpack(archive: Path | str, dest: Path | str) -> Path:
    """Extract the tar (plain or gzip) `archive` into the folder `dest`; return `dest`."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                parts = PurePosixPath(member.name).parts
                if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in parts:
                    raise ValueError(f"{archive}: member {member.name!r} is not a plain file or folder "
                                     "inside the archive; refusing to extract it")
            dest.mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.TarError as err:
        raise ValueError(f"{archive}: not a readable tar archive ({err})") from None
    return dest
