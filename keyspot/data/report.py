"""The data report: what the fetch stage wrote into data/raw, and what it left out.

`reports/data.json` (DVC metrics of the fetch stage) holds the clips per
class and split, the durations, sample rates, channels and formats of the
source files, the clips that are clipped or silent, and every source file
that was skipped with its reason. `reports/data/clips.csv` and
`reports/data/durations.csv` feed the plots declared in dvc.yaml.

It is written from data/raw itself plus the source's summary (`skipped`,
and `sources` where the source records them), so it works for every source.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

from keyspot import artifacts
from keyspot.cpu import cores
from keyspot.data.manifest import present, read_manifest

SILENT_DBFS = -60.0   # a clip whose RMS is below this holds no usable sound
CLIPPED_RUN = 3       # this many consecutive samples at full scale: clipped
# Histogram edges of the source durations, in seconds.
DURATION_EDGES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0,
                  120.0, 300.0, 600.0)


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One source recording that became clips."""
    path: str          # relative to the dataset's root (or the clip it became)
    seconds: float
    sample_rate: int
    channels: int
    format: str        # e.g. "WAV PCM_24", "OGG VORBIS", or the speech engine


def clip_flags(pcm: np.ndarray) -> tuple[bool, bool]:
    """(clipped, silent) for int16 PCM."""
    full = (pcm >= 32767) | (pcm <= -32767)
    runs = full[:len(full) - CLIPPED_RUN + 1].copy()
    for k in range(1, CLIPPED_RUN):
        runs &= full[k:len(full) - CLIPPED_RUN + 1 + k]
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if len(pcm) else 0.0
    return bool(runs.any()), rms < 32768.0 * 10.0 ** (SILENT_DBFS / 20.0)


def build(summary, dataset, raw_dir: Path) -> dict:
    """The report as a dict (sorted, rounded: the same data gives the same bytes)."""
    raw_dir = Path(raw_dir)
    labels = json.loads((raw_dir / "labels.json").read_text())
    rows = read_manifest(raw_dir / "manifest.csv", check_files=False)
    splits = present({r.split for r in rows})
    per_label = {label: {s: 0 for s in splits} for label in labels}
    for row in rows:
        per_label[row.label][row.split] += 1
    flags = _flags([raw_dir / r.path for r in rows])
    clipped = [r for r, (c, _) in zip(rows, flags, strict=True) if c]
    silent = [r for r, (_, s) in zip(rows, flags, strict=True) if s]
    sources = list(getattr(summary, "sources", None) or [])
    skipped = sorted(summary.skipped)
    return {
        "source": dataset.name,
        "labels": labels,
        "clips": {"total": len(rows), **{s: sum(1 for r in rows if r.split == s) for s in splits}},
        "clips_per_label": per_label,
        "source_files": {"used": len(sources) if sources else None, "skipped": len(skipped)},
        "durations_s": _durations(sources, dataset.clip_seconds),
        "sample_rates": _counts(s.sample_rate for s in sources),
        "channels": _counts(s.channels for s in sources),
        "formats": _counts(s.format for s in sources),
        "clipped": _flagged(clipped),
        "silent": _flagged(silent),
        "skipped": [{"path": path, "reason": reason} for path, reason in skipped],
    }


def write(summary, dataset, raw_dir: Path, json_path: Path, plots_dir: Path) -> dict:
    """Write reports/data.json and the plot tables; return the report."""
    report = build(summary, dataset, raw_dir)
    artifacts.write_json(json_path, report)
    with artifacts.staged_dir(plots_dir) as tmp:
        (tmp / "clips.csv").write_text(_csv(
            ["split_label", "split", "label", "clips"],
            [[f"{s}/{label}", s, label, by_split[s]]
             for s in present(report["clips"]) for label, by_split in report["clips_per_label"].items()]))
        sources = list(getattr(summary, "sources", None) or [])
        (tmp / "durations.csv").write_text(_csv(["duration", "files", "order"],
                                                _histogram([s.seconds for s in sources])))
    return report


def line(report: dict, json_path: Path) -> str:
    return (f"fetch: data report in {json_path}: {report['clips']['total']} clips, "
            f"{report['clipped']['clips']} clipped, {report['silent']['clips']} silent, "
            f"{len(report['skipped'])} source files skipped")


# Files a thread reads at a time. A future per file cost more than the
# reading: ThreadPoolExecutor.map ignores chunksize, and 21,720 futures took
# 11 s where their files take 3.
FLAGS_BLOCK = 256


def _flags(paths: list[Path]) -> list[tuple[bool, bool]]:
    # libsndfile releases the GIL while it reads: threads overlap the reads.
    blocks = [paths[i:i + FLAGS_BLOCK] for i in range(0, len(paths), FLAGS_BLOCK)]
    with ThreadPoolExecutor(cores()) as pool:
        return [flags for block in pool.map(_flags_of_block, blocks) for flags in block]


def _flags_of_block(paths: list[Path]) -> list[tuple[bool, bool]]:
    return [_flags_of(p) for p in paths]


def _flags_of(path: Path) -> tuple[bool, bool]:
    try:
        pcm, _ = soundfile.read(str(path), dtype="int16", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        # The source wrote it moments ago; say so rather than stop the stage.
        print(f"fetch: report: cannot read {path}: {err}", file=sys.stderr)
        return False, False
    return clip_flags(pcm if pcm.ndim == 1 else pcm[:, 0])


def _flagged(rows) -> dict:
    return {"clips": len(rows), "per_label": dict(sorted(Counter(r.label for r in rows).items())),
            "paths": sorted(r.path for r in rows)}


def _durations(sources, clip_seconds: float) -> dict | None:
    if not sources:
        return None
    x = np.array(sorted(s.seconds for s in sources), dtype=np.float64)
    return {"files": int(x.size), "min": _r(x[0]), "p05": _r(np.percentile(x, 5)),
            "median": _r(np.median(x)), "mean": _r(x.mean()), "p95": _r(np.percentile(x, 95)),
            "max": _r(x[-1]), "shorter_than_clip": int((x < clip_seconds).sum()),
            "longer_than_clip": int((x > clip_seconds).sum())}


def _histogram(seconds: list[float]) -> list[list]:
    """(bin label, files, bin number) from the first to the last non-empty
    bin; the plot orders the bins by their number."""
    edges = np.array(DURATION_EDGES)
    counts = np.bincount(np.searchsorted(edges, seconds, side="right") - 1, minlength=len(edges))
    used = np.flatnonzero(counts)
    if not used.size:
        return []
    out = []
    for i in range(used[0], used[-1] + 1):
        name = (f"{edges[i]:g}-{edges[i + 1]:g} s" if i + 1 < len(edges)
                else f"over {edges[i]:g} s")
        out.append([name, int(counts[i]), int(i)])
    return out


def _counts(values) -> dict[str, int]:
    counts = Counter(values)
    return {str(k): counts[k] for k in sorted(counts)}


def _csv(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _r(value) -> float:
    return round(float(value), 4)
