"""data/sentences/: what the held-out speakers read for the streams.

The talk a device overhears between commands: the synthetic source's val,
test and held-out voices reading sentences, each a recording of its own
length. A folder beside data/raw, written by the fetch stage and read by
the streams stage alone: not clips, so never features or training, and a
change to them retrains nothing. `sentences.csv` lists them (`path`
relative to the folder, `split`, `speaker`, `text`, `details`); a source
that reads none writes its header alone.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from keyspot.data.manifest import ALL_SPLITS

SENTENCES = "sentences.csv"
SENTENCE_HEADER = ("path", "split", "speaker", "text", "details")


@dataclasses.dataclass(frozen=True)
class SentenceRow:
    path: str
    split: str
    speaker: str
    text: str
    details: str = ""


def write_sentences(path: Path, rows) -> None:
    """Write `rows` sorted by path, with `\\n` line endings."""
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SENTENCE_HEADER)
        for row in sorted(rows, key=lambda r: r.path):
            writer.writerow(dataclasses.astuple(row))


def read_sentences(folder: Path) -> list[SentenceRow]:
    """folder/sentences.csv's rows, paths relative to `folder`; none where
    the source read no sentences (no file, or a header alone). ValueError
    naming the file and line for a bad one."""
    path = Path(folder) / SENTENCES
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if tuple(header or ()) != SENTENCE_HEADER:
            raise ValueError(f"{path}:1: header is {','.join(header or ()) or 'nothing'!r}, expected "
                             f"{','.join(SENTENCE_HEADER)!r}; rerun `dvc repro fetch`")
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(SENTENCE_HEADER):
                raise ValueError(f"{path}:{reader.line_num}: expected {len(SENTENCE_HEADER)} fields, "
                                 f"got {len(fields)}")
            row = SentenceRow(*fields)
            if row.split not in ALL_SPLITS:
                raise ValueError(f"{path}:{reader.line_num}: unknown split {row.split!r}; "
                                 f"use one of {', '.join(ALL_SPLITS)}")
            if not (Path(folder) / row.path).is_file():
                raise ValueError(f"{path}:{reader.line_num}: {row.path} does not exist in {folder}")
            rows.append(row)
    return rows
