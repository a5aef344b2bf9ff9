"""data/raw/manifest.csv: one row per clip, the contract between fetch and features.

Columns are `path,label,split,speaker`; `path` is relative to the manifest's
folder and uses forward slashes; `speaker` keeps splits speaker-disjoint. A
source may add a fifth column, `details`: how the clip was made (the
synthetic source's engine, prosody, room, microphone and background).

Every dataset has the splits train, val and test. `test_engine` is
optional: clips of a speech engine held out of training and validation
altogether (the synthetic source's unseen-engine test).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

HEADER = ("path", "label", "split", "speaker")
DETAILS = "details"
SPLITS = ("train", "val", "test")
HELD_OUT_ENGINE = "test_engine"
ALL_SPLITS = (*SPLITS, HELD_OUT_ENGINE)


@dataclasses.dataclass(frozen=True)
class Row:
    path: str
    label: str
    split: str
    speaker: str
    details: str = ""


def present(splits) -> tuple[str, ...]:
    """The required splits and whichever optional ones `splits` holds, in order."""
    return tuple(s for s in ALL_SPLITS if s in SPLITS or s in set(splits))


def counts_table(counts: dict[str, dict[str, int]], column: int = 6) -> list[str]:
    """Lines of clips per label (rows) and split (columns), as the fetch
    stage prints them; `counts` is split -> label -> clips."""
    labels = list(next(iter(counts.values())))
    width = max(len(label) for label in labels)
    splits = present(counts)
    widths = {s: max(column, len(s)) for s in splits}
    lines = [f"  {'label':<{width}} " + " ".join(f"{s:>{widths[s]}}" for s in splits)]
    for label in labels:
        lines.append(f"  {label:<{width}} " + " ".join(f"{counts[s][label]:>{widths[s]}}" for s in splits))
    return lines


def write_manifest(path: Path, rows) -> None:
    """Write `rows` sorted by path, with `\\n` line endings; the details
    column only when a row has details."""
    path = Path(path)
    rows = sorted(rows, key=lambda r: r.path)
    detailed = any(r.details for r in rows)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow((*HEADER, DETAILS) if detailed else HEADER)
        for row in rows:
            fields = dataclasses.astuple(row)
            writer.writerow(fields if detailed else fields[:len(HEADER)])


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
        if header is None or tuple(header) not in (HEADER, (*HEADER, DETAILS)):
            got = ",".join(header) if header else "nothing"
            raise ValueError(f"{path}:1: header is {got!r}, expected {','.join(HEADER)!r} "
                             f"(and optionally ,{DETAILS})")
        columns = len(header)
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != columns:
                raise ValueError(f"{path}:{line}: expected {columns} fields, got {len(fields)}")
            row = Row(*fields)
            for name, value in zip(HEADER, fields, strict=False):
                if not value:
                    raise ValueError(f"{path}:{line}: empty {name}")
            if row.split not in ALL_SPLITS:
                raise ValueError(
                    f"{path}:{line}: unknown split {row.split!r}; use one of {', '.join(ALL_SPLITS)}")
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
