"""dataset.name -> the function that writes data/raw/ for that source.

Every source has the same contract: `fetch(dataset, seed, out)` writes
`out/` (clips, manifest.csv, labels.json) and returns a summary with
`line()` and `table()` for the log, and `skipped` ((source path, reason) for
every file not used) for the data report (keyspot/data/report.py), which
also reads `sources` (a list of report.SourceFile) where a source has it.
The features stage reads only `out/`.
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
