"""A tiny two-word dataset in data/raw layout, for stage-level tests.

"tone" clips are a steady tone, "chirp" clips a rising sweep, `_silence_`
clips low noise; each clip has its own pitch, level and noise, so a small
model learns the difference in a few epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keyspot.audio import write_wav
from keyspot.data.manifest import Row, write_manifest

LABELS = ["_silence_", "_unknown_", "tone", "chirp"]


def make(root: Path, per_class: int = 12, seed: int = 0, sample_rate: int = 16000) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(sample_rate) / sample_rate
    rows = []
    for label in ("_silence_", "tone", "chirp"):
        for i in range(per_class):
            f0 = rng.uniform(300, 900)
            if label == "tone":
                x = 0.3 * np.sin(2 * np.pi * f0 * t)
            elif label == "chirp":
                x = 0.3 * np.sin(2 * np.pi * (f0 + 1200 * t) * t)
            else:
                x = np.zeros_like(t)
            x = x * rng.uniform(0.3, 1.0) + rng.uniform(0.002, 0.02) * rng.standard_normal(len(t))
            split = "test" if i % 6 == 0 else "val" if i % 6 == 1 else "train"
            path = f"{label}/{i:03d}.wav"
            (root / label).mkdir(parents=True, exist_ok=True)
            write_wav(root / path, np.round(x * 32767).astype(np.int16), sample_rate)
            rows.append(Row(path, label, split, f"speaker{i}"))
    write_manifest(root / "manifest.csv", rows)
    (root / "labels.json").write_text(json.dumps(LABELS))
    return root
