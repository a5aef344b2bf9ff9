"""Extracting a downloaded tar archive without trusting it.

A member may not name an absolute path or climb out with `..`, and a link
may not point outside the target: such an archive is refused as a whole.
Members land in a temporary sibling of the target that is renamed into place
only after the last one, so a target folder that exists is always complete;
a refused or broken archive leaves nothing behind.
"""

from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

from tqdm import tqdm

from keyspot.data.source import SourceError


class ArchiveError(SourceError):
    """The archive cannot be read (truncated, not a tar, bad compression)."""


class UnsafeArchiveError(ArchiveError):
    """A member would be written, or would point, outside the target."""


# Written into a finished extraction: what it was extracted from.
STAMP = ".keyspot-extracted"


def extract(archive: Path, target: Path, stamp: str = "", progress: bool = True) -> Path:
    """Extract every member of `archive` (a tar, optionally gzip/bz2/xz) into `target`.

    `stamp` (say, the archive's SHA-256) goes into `target/.keyspot-extracted`
    so that `is_extracted` can tell this tree from one of another archive.
    An existing `target` is replaced only once the new tree is complete.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)
    try:
        with tarfile.open(archive) as tar, \
                tqdm(desc=f"extract {archive.name}", unit=" files", file=sys.stderr, leave=False,
                     disable=None if progress else True) as bar:
            def members():
                for member in tar:
                    bar.update()
                    yield member

            tar.extractall(tmp, members=members(), filter=_checked)
        (tmp / STAMP).write_text(stamp + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, tarfile.FilterError):
            raise UnsafeArchiveError(f"{archive}: {err}; refusing the archive. "
                                     "Delete it and fetch it again from a source you trust") from None
        if isinstance(err, (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)):
            raise ArchiveError(f"{archive}: not a readable archive ({err}); "
                               "delete it and fetch it again") from None
        raise
    return target


def is_extracted(target: Path, stamp: str = "") -> bool:
    """Whether `target` is a finished extraction carrying `stamp`."""
    marker = Path(target) / STAMP
    return marker.is_file() and marker.read_text().strip() == stamp


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why writing `member` could touch something outside the target, or None."""
    name = member.name
    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if _escapes(name):
        return "climbs out of the target with '..'"
    if member.issym():
        link = member.linkname
        if posixpath.isabs(link) or _escapes(posixpath.join(posixpath.dirname(name), link)):
            return f"is a symlink to {link!r}, outside the target"
    if member.islnk():
        link = member.linkname
        if posixpath.isabs(link) or _escapes(link):
            return f"is a hard link to {link!r}, outside the target"
    if member.ischr() or member.isblk() or member.isfifo():
        return "is a device or pipe"
    return None


def _checked(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    reason = unsafe_reason(member)
    if reason:
        raise tarfile.FilterError(f"member {member.name!r} {reason}")
    # The standard library's own checks on top: they also resolve links
    # extracted earlier, and drop set-uid bits and foreign ownership.
    return tarfile.data_filter(member, dest)


def _escapes(path: str) -> bool:
    return posixpath.normpath(path).split("/")[0] == ".."
