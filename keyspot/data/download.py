"""Downloading one large file over HTTP(S): resumable, verified, cached.

The bytes arrive in `<dest>.part`. A dropped connection keeps them there and
the next request asks only for the rest (an HTTP Range request), within the
same call or the next run. `<dest>` itself appears only once its SHA-256
matches the pinned value, so a file under its final name is always whole.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from keyspot.data.source import SourceError

CHUNK = 1 << 20
USER_AGENT = "keyspot"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(SourceError):
    """The file could not be fetched: unreachable, refused, or cut off too often."""


class ChecksumError(DownloadError):
    """The bytes fetched are not the ones pinned."""


class _Interrupted(Exception):
    """The connection ended before the whole body arrived; worth resuming."""


def sha256_of(path: Path, progress: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, _bar(f"verify {path.name}", path.stat().st_size, 0, progress) as bar:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def download(url: str, dest: Path, sha256: str, *, attempts: int = 5, timeout: float = 60.0,
             progress: bool = True) -> Path:
    """Fetch `url` into `dest` unless a file with that SHA-256 is already there.

    Raises DownloadError naming the URL when the server cannot be reached or
    refuses, or the connection drops `attempts` times in a row (the bytes so
    far stay in `<dest>.part` for the next run); ChecksumError when the
    finished download does not match `sha256` (it is deleted: resuming from
    wrong bytes cannot give right ones).
    """
    dest = Path(dest)
    sha256 = sha256.lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        if sha256_of(dest, progress) == sha256:
            return dest
        # Pinned checksum changed, or the cached copy was damaged: fetch again.
        print(f"fetch: {dest} does not match its SHA-256; downloading it again", file=sys.stderr)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    last: _Interrupted | None = None
    for _ in range(attempts):
        try:
            _request_rest(url, part, timeout, progress)
            break
        except _Interrupted as err:
            last = err
    else:
        have = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"{url}: the connection dropped {attempts} times (last: {last}); the "
                            f"{have} bytes received are kept in {part} and the next run resumes from there")
    digest = sha256_of(part, progress)
    if digest != sha256:
        part.unlink()
        raise ChecksumError(f"{url}: SHA-256 of the download is {digest}, expected {sha256}; deleted it. "
                            "Check the base URL; if the file was republished on purpose, pin its new checksum")
    os.replace(part, dest)
    return dest


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed): two runs sharing a
    cache must not append to the same .part file at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _request_rest(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append to `part` what the server has beyond it; raise _Interrupted if cut off."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            # Nothing beyond what we hold: the .part is complete (or longer
            # than the file, which the checksum then reports).
            return
        raise DownloadError(f"{url}: the server answered {err.code} {err.reason}; check the URL "
                            "(dataset.base_url) or try again later") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot connect ({err.reason}); check the network "
                            "connection and the URL (dataset.base_url)") from None
    except (TimeoutError, OSError) as err:
        raise DownloadError(f"{url}: cannot connect ({err}); check the network "
                            "connection and the URL (dataset.base_url)") from None
    with response:
        span = _span(response, have)
        if span is None:
            part.unlink(missing_ok=True)
            raise _Interrupted(f"the server resumed at {response.headers.get('Content-Range')!r}, not "
                               f"at byte {have}; starting over")
        start, total = span
        with open(part, "r+b" if start else "wb") as f, \
                _bar(Path(part.name).stem, total, start, progress) as bar:
            f.seek(start)
            f.truncate()
            got = start
            try:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _Interrupted(f"after {got} bytes: {err}") from None
    # http.client returns a short body without complaint when the peer closes
    # early; only the announced length tells.
    if total is not None and got < total:
        raise _Interrupted(f"connection closed after {got} of {total} bytes")


def _span(response, have: int) -> tuple[int, int | None] | None:
    """Where the body starts in the file and the file's full length, if known;
    None for a partial answer that does not continue at `have`."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if not match or int(match[1]) != have:
            return None
        return have, None if match[3] == "*" else int(match[3])
    # 200: the server sends the whole file (it ignored the Range, or none was asked).
    return 0, int(length) if length and length.isdigit() else None


def _bar(desc: str, total: int | None, initial: int, progress: bool):
    # disable=None: only on a terminal, so that logs do not fill with \r frames.
    return tqdm(desc=desc, total=total, initial=initial, unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr, leave=False, disable=None if progress else True)
