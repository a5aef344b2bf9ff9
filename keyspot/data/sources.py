"""dataset.name -> the function that writes data/raw/ for that source.

Every source has the same contract: `fetch(dataset, seed, out)` writes
`out/` (clips, manifest.csv, labels.json) and returns a
keyspot.data.source.Summary: `line()` and `table()` for the log, `skipped`
((source path, reason) for every file not used) and `sources` (each source
file that became clips) for the data report (keyspot/data/report.py). Its
errors are keyspot.data.source.SourceError. The features stage reads only
`out/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keyspot.data import folder, s3, speech_commands, synthetic

SOURCES: dict[str, Callable] = {
    "synthetic": synthetic.generate,
    "speech_commands": speech_commands.fetch,
    "folder": folder.fetch,
    "s3": s3.fetch,
}


def fetch(dataset, seed: int, out: Path):
    return SOURCES[dataset.name](dataset, seed, out)
