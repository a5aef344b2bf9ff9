"""What every dataset source shares: how it declares itself, its base
error, the summary it returns, the split-count check, the seeded random
generators and the crash-safe worker pool.

A source is one module of keyspot/data/ with a module-level `SOURCE =
Source(name, schema, fetch)`: `schema` is the dataclass of its `dataset.*`
keys (a Hydra structured config, keyspot/schema.py; `name`, `sample_rate`
and `clip_seconds` among them), and `fetch(dataset,
seed, out)` writes data/raw/ (clips, manifest.csv, labels.json) and returns a
`Summary`. A source that has its held-out speakers read sentences for the
streams also gives `sentences(dataset, seed, out)`, which writes
data/sentences/ and returns how many. keyspot.data.sources finds them;
conf/dataset/<name>.yaml makes it a choice of `dataset=`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from keyspot.data.manifest import SPLITS, counts_table, present
from keyspot.data.report import SourceFile
from keyspot.errors import UserError


@dataclasses.dataclass(frozen=True)
class Source:
    name: str                  # dataset.name, and the file name in conf/dataset/
    schema: type               # the dataclass of its dataset.* keys
    fetch: Callable            # fetch(dataset, seed, out) -> Summary
    sentences: Callable | None = None   # sentences(dataset, seed, out) -> int, or none to read


class SourceError(UserError, RuntimeError):
    """A dataset cannot be fetched; the message says what to change."""


def seeded_rng(*parts) -> np.random.Generator:
    """A generator keyed by `parts` (the seed, then what it is for): the same
    parts give the same numbers in any process and in any order of work."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:16], "little"))


@dataclasses.dataclass
class Summary:
    """What a source wrote, for the log and the data report."""
    out: Path
    origin: str                          # where the clips came from, as the log line says it
    counts: dict[str, dict[str, int]]    # split -> label -> clips
    skipped: list[tuple[str, str]]       # (source path, reason)
    sources: list[SourceFile]            # each source file or rendering that became clips
    seconds: float = 0.0
    notes: tuple[str, ...] = ()          # more facts for the end of the log line
    skipped_shown: int = 0               # skipped files listed under the table (all are on stderr)
    column: int = 6                      # width of the table's count columns

    @property
    def clips(self) -> int:
        return sum(sum(by_label.values()) for by_label in self.counts.values())

    def line(self) -> str:
        per_split = ", ".join(f"{sum(self.counts[s].values())} {s}" for s in present(self.counts))
        return (f"fetch: {self.clips} clips ({per_split}) from {self.origin} in {self.out} "
                f"in {self.seconds:.1f} s; {len(self.skipped)} skipped" + "".join(f", {n}" for n in self.notes))

    def table(self) -> str:
        lines = counts_table(self.counts, column=self.column)
        for path, reason in self.skipped[:self.skipped_shown]:
            lines.append(f"  skipped {path}: {reason}")
        if self.skipped_shown and len(self.skipped) > self.skipped_shown:
            lines.append(f"  ... and {len(self.skipped) - self.skipped_shown} more skipped (listed on stderr)")
        return "\n".join(lines)


def check_counts(counts: dict[str, dict[str, int]], skipped: int, error: type[SourceError], split_hint: str,
                 label_hint: str | None = None, required: set[str] | None = None) -> None:
    """`error` unless every split has clips and every label (of `required`,
    if given) has training clips; the hints say what to do about each."""
    for split in SPLITS:
        if not sum(counts[split].values()):
            raise error(f"no {split} clips were written ({skipped} skipped); {split_hint}")
    empty = [label for label, n in counts["train"].items() if n == 0 and (required is None or label in required)]
    if empty:
        raise error(f"no train clips for {', '.join(empty)} ({skipped} skipped); {label_hint or split_hint}")
