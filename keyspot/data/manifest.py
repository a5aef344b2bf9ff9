"""data/raw/manifest.csv: one row per clip, the contract between fetch and features.

Columns are `path,label,split,speaker`; `path` is relative to the manifest's
folder and uses forward slashes; `speaker` keeps splits speaker-disjoint.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

HEADER = ("path", "label", "split", "speaker")
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Row:
    path: str
    label: str
    split: str
    speaker: str


def counts_table(counts: dict[str, dict[str, int]], column: int = 6) -> list[str]:
    """Lines of clips per label (rows) and split (columns), as the fetch
    stage prints them; `counts` is split -> label -> clips."""
    labels = list(next(iter(counts.values())))
    width = max(len(label) for label in labels)
    lines = [f"  {'label':<{width}} " + " ".join(f"{s:>{column}}" for s in SPLITS)]
    for label in labels:
        lines.append(f"  {label:<{width}} " + " ".join(f"{counts[s][label]:>{column}}" for s in SPLITS))
    return lines


def write_manifest(path: Path, rows) -> None:
    """Write `rows` sorted by path, with `\\n` line endings."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for row in sorted(rows, key=lambda r: r.path):
            writer.writerow(dataclasses.astuple(row))


def read_manifest(path: Path, check_files: bool = True) -> list[Row]:
    """Read and validate a manifest; raise ValueError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not found")
    root = path.parent
    rows: list[Row] = []
    seen: dict[str, int] = {}
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != HEADER:
            got = ",".join(header) if header else "nothing"
            raise ValueError(f"{path}:1: header is {got!r}, expected {','.join(HEADER)!r}")
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != len(HEADER):
                raise ValueError(f"{path}:{line}: expected {len(HEADER)} fields, got {len(fields)}")
            row = Row(*fields)
            for name, value in zip(HEADER, fields, strict=True):
                if not value:
                    raise ValueError(f"{path}:{line}: empty {name}")
            if row.split not in SPLITS:
                raise ValueError(
                    f"{path}:{line}: unknown split {row.split!r}; use one of {', '.join(SPLITS)}")
            # String checks, not pathlib: this runs once per clip of datasets
            # with a hundred thousand clips.
            if row.path.startswith("/") or ".." in row.path.split("/") or "\\" in row.path:
                raise ValueError(f"{path}:{line}: path {row.path!r} must be relative to {root}, "
                                 "with forward slashes and no '..'")
            if row.path in seen:
                raise ValueError(f"{path}:{line}: {row.path} already listed on line {seen[row.path]}")
            seen[row.path] = line
            if check_files and not os.path.isfile(os.path.join(root, row.path)):
                raise ValueError(f"{path}:{line}: {row.path} does not exist in {root}")
            rows.append(row)
    return rows
