"""Writing pipeline outputs atomically and byte-reproducibly.

DVC hashes every output; `dvc repro -f` twice must give the same hashes, so
nothing written here may carry a timestamp, and a killed stage must never
leave a half-written file where the next stage would read it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# The earliest time a zip entry can hold; fixed so archives are reproducible.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_bytes(path: Path | str, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make outputs private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path | str, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path | str, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_npz(dest: Path | str, /, **arrays: np.ndarray) -> None:
    """np.savez without the wall-clock timestamps numpy puts in the zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.asarray(arrays[name]), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH), entry.getvalue())
    write_bytes(dest, buffer.getvalue())


@dataclasses.dataclass
class Streamed:
    """An array written chunk by chunk: its final shape and dtype, and an
    iterable of arrays that concatenate (along axis 0) to it."""
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Iterable[np.ndarray]


def save_npz_streamed(dest: Path | str, /, **arrays: np.ndarray | Streamed) -> None:
    """Like `save_npz`, but `Streamed` arrays go to disk chunk by chunk, so
    an array larger than memory can be written. Reproducible bytes; the file
    appears only when complete."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in sorted(arrays):
                value = arrays[name]
                info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
                with archive.open(info, "w", force_zip64=True) as entry:
                    if isinstance(value, Streamed):
                        _write_streamed(entry, value, name)
                    else:
                        np.lib.format.write_array(entry, np.asarray(value), allow_pickle=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_streamed(entry, value: Streamed, name: str) -> None:
    dtype = np.dtype(value.dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": tuple(int(d) for d in value.shape)}
    np.lib.format.write_array_header_1_0(entry, header)
    rows, row_shape = 0, tuple(value.shape[1:])
    for chunk in value.chunks:
        chunk = np.ascontiguousarray(chunk, dtype=dtype)
        if chunk.shape[1:] != row_shape:
            raise ValueError(f"{name}: chunk of shape {chunk.shape}, rows must be {row_shape}")
        entry.write(chunk.tobytes())
        rows += len(chunk)
    if rows != value.shape[0]:
        raise ValueError(f"{name}: {rows} rows written, {value.shape[0]} declared")


def normalise_zip(path: Path | str, rewrite: dict[str, Callable[[bytes], bytes]] | None = None) -> None:
    """Rewrite a zip with fixed entry times and sorted entries, passing the
    named members through their `rewrite` function first."""
    path = Path(path)
    rewrite = rewrite or {}
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(src.namelist()):
            data = src.read(name)
            if name in rewrite:
                data = rewrite[name](data)
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    write_bytes(path, out.getvalue())


@contextmanager
def staged_dir(path: Path | str):
    """Yield a temporary sibling folder; on success it replaces `path`.

    On an exception (or a kill) the previous `path` is left as it was, also
    when the swap itself fails half-way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would make outputs private
    old = None
    try:
        yield tmp
        if path.exists():
            old = tmp.with_name(tmp.name[:-len(".tmp")] + ".old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)


def install_together(moves: dict[Path, Path]) -> None:
    """Move each staged file or folder (key) over its destination (value) as
    one set: every destination is renamed aside first, then each staged one
    renamed in, then the old ones removed. Renames only, so the window in
    which a kill leaves a mixed set is a few system calls long; an exception
    puts the previous set back. What a killed install left beside the
    destinations (`.<name>.*`) is removed first."""
    for dest in moves.values():
        clear_stale(dest)
    aside: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        for dest in moves.values():
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                aside[dest] = dest.with_name(f".{dest.name}.{os.getpid()}.old")
                os.replace(dest, aside[dest])
        for src, dest in moves.items():
            os.replace(src, dest)
            placed.append(dest)
    except BaseException:
        for dest in placed:
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        for dest, old in aside.items():
            os.replace(old, dest)
        raise
    for old in aside.values():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def clear_stale(path: Path | str) -> None:
    """Remove the temporary siblings a killed run of `staged_dir` left."""
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
