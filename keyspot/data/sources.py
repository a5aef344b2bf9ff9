"""dataset.name -> the function that writes data/raw/ for that source.

Every source has the same contract: `fetch(dataset, seed, out)` writes
`out/` (clips, manifest.csv, labels.json) and returns a summary with
`line()` and `table()` for the log. The features stage reads only that.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keyspot.data import synthetic

SOURCES: dict[str, Callable] = {
    "synthetic": synthetic.generate,
}


def fetch(dataset, seed: int, out: Path):
    return SOURCES[dataset.name](dataset, seed, out)
