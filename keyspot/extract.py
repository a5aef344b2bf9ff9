"""The features stage: clips of a manifest -> per-split feature arrays.

Training clips are augmented here (time shift, added noise) into extra
copies, so that the model sees the variations a microphone brings. The
normalisation statistics are measured on the training split and written
into the spec, which every later consumer reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from keyspot import artifacts, audio, features
from keyspot.data.manifest import read_manifest

SPLITS = ("train", "val", "test")


def _rng(seed: int, *parts) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def augment(pcm: np.ndarray, rng: np.random.Generator, sample_rate: int, aug) -> np.ndarray:
    """Shift in time (zero fill) and add white noise at a random SNR."""
    x = pcm.astype(np.float32)
    max_shift = int(sample_rate * aug.shift_ms / 1000)
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift else 0
    x = np.roll(x, shift)
    if shift > 0:
        x[:shift] = 0
    elif shift < 0:
        x[shift:] = 0
    power = float(np.mean(x ** 2))
    if power > 0:
        snr_db = rng.uniform(*aug.noise_snr_db_range)
        x += rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def load_split(raw_dir: Path, rows, spec: features.FeatureSpec) -> tuple[np.ndarray, list]:
    """Decode every clip of a split; report and skip the unreadable ones."""
    pcm, kept = [], []
    for row in tqdm(rows, desc="decode", unit="clip", leave=False, disable=None, file=sys.stderr):
        try:
            pcm.append(audio.load_clip(raw_dir / row.path, spec.sample_rate, spec.clip_samples))
            kept.append(row)
        except audio.AudioError as err:
            print(f"features: skipped {err}", file=sys.stderr)
    if not pcm:
        return np.zeros((0, spec.clip_samples), np.int16), kept
    return np.stack(pcm), kept


def run(params, raw_dir: Path, out_dir: Path) -> dict:
    """Extract features for every split into out_dir; return counts per split."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    labels = json.loads((raw_dir / "labels.json").read_text())
    rows = read_manifest(raw_dir / "manifest.csv")
    spec = features.spec_from_params(params.features, params.dataset.sample_rate,
                                     params.dataset.clip_seconds, labels)
    label_id = {label: i for i, label in enumerate(labels)}
    unknown = sorted({r.label for r in rows} - set(label_id))
    if unknown:
        raise ValueError(f"{raw_dir / 'manifest.csv'}: labels {unknown} are not in labels.json")

    raw_features, label_ids, paths = {}, {}, {}
    for split in SPLITS:
        split_rows = [r for r in rows if r.split == split]
        pcm, kept = load_split(raw_dir, split_rows, spec)
        ids = np.array([label_id[r.label] for r in kept], dtype=np.int32)
        names = [r.path for r in kept]
        if split == "train" and params.features.augment.copies > 0 and len(pcm):
            extra = [augment(clip, _rng(params.seed, "augment", name, copy), spec.sample_rate,
                             params.features.augment)
                     for copy in range(params.features.augment.copies)
                     for clip, name in zip(pcm, names, strict=True)]
            pcm = np.concatenate([pcm, np.stack(extra)])
            ids = np.tile(ids, params.features.augment.copies + 1)
            names = names * (params.features.augment.copies + 1)
        if len(pcm) == 0:
            raise ValueError(f"{raw_dir / 'manifest.csv'}: the {split} split has no readable clips")
        raw_features[split] = np.concatenate(
            [features.unnormalised(pcm[i:i + 1024], spec) for i in range(0, len(pcm), 1024)])
        label_ids[split], paths[split] = ids, names

    train = raw_features["train"].reshape(-1, spec.num_coefficients).astype(np.float64)
    spec = dataclasses.replace(spec, mean=tuple(float(v) for v in train.mean(axis=0)),
                               std=tuple(float(v) for v in np.maximum(train.std(axis=0), 1e-6)))

    counts = {}
    with artifacts.staged_dir(out_dir) as tmp:
        for split in SPLITS:
            x = features.normalise(raw_features[split], spec)
            artifacts.save_npz(tmp / f"{split}.npz", x=x, y=label_ids[split],
                               path=np.array(paths[split]))
            counts[split] = int(len(x))
        spec.save(tmp / "spec.json")
    return counts
