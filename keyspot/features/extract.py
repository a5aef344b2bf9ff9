"""The features stage: clips of a manifest -> per-split feature arrays.

Clips are decoded and turned into features in fixed-size chunks on a pool
of threads (numpy, scipy's FFT and file reads release the GIL, so threads
use every core without the start-up and copying cost of processes). Each
finished chunk is written straight into a memory-mapped scratch array, so
memory stays flat whatever the dataset size; a second streamed pass
normalises with the training split's statistics and writes the .npz files.
Results do not depend on the number of workers: chunks are fixed in size
and consumed in order.

Training-time augmentation lives in the train stage (keyspot/augment.py),
which reads the clips of the training split from data/raw itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from keyspot import artifacts, audio, cpu, features
from keyspot.data.manifest import present, read_manifest

# Clips per task: large enough that numpy's per-call overhead vanishes,
# small enough that a chunk's frames (about 6 MB) stay in the CPU caches;
# measured fastest on x86 (64 clips: 8.6k clips/s per core, 256: 6.8k).
CHUNK = 64
# Clips per update of the normalisation statistics: fixed on its own, so the
# statistics (and every feature) stay the same if CHUNK is tuned.
STATS_BLOCK = 256
assert STATS_BLOCK % CHUNK == 0


_thread_scratch = threading.local()


def _scratch(spec: features.FeatureSpec):
    """This thread's PCM buffer and feature workspace, made once per spec."""
    if getattr(_thread_scratch, "spec", None) != spec:
        _thread_scratch.spec = spec
        _thread_scratch.pcm = np.zeros((CHUNK, spec.clip_samples), np.int16)
        _thread_scratch.work = features.Workspace(spec, CHUNK)
    return _thread_scratch.pcm, _thread_scratch.work


def _chunk_features(paths: list[str], spec: features.FeatureSpec):
    """Decode and featurise one chunk; unreadable clips come back as errors."""
    pcm, work = _scratch(spec)
    pcm = pcm[:len(paths)]
    ok = np.zeros(len(paths), bool)
    errors = []
    for i, path in enumerate(paths):
        try:
            pcm[i] = audio.load_clip(path, spec.sample_rate, spec.clip_samples)
            ok[i] = True
        except audio.AudioError as err:
            pcm[i] = 0
            errors.append(str(err))
    return features.unnormalised(pcm, spec, work), ok, errors


def stream_features(paths: list[Path], spec: features.FeatureSpec, workers: int = 0):
    """Yield (start, features, ok, errors) per chunk, in order.

    At most two chunks per worker are in flight, so memory does not grow
    with the number of clips.
    """
    workers = workers or cpu.cores()
    starts = range(0, len(paths), CHUNK)
    # The workers are the parallelism: OpenBLAS threads for each worker's
    # small mel product only contend with them (measured: a cold run at half
    # the speed, 3.9k against 8.6k clips/s on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for start in starts:
            pending.append((start, pool.submit(_chunk_features, paths[start:start + CHUNK], spec)))
            if len(pending) >= 2 * workers:
                start_done, future = pending.popleft()
                yield (start_done, *future.result())
        while pending:
            start_done, future = pending.popleft()
            yield (start_done, *future.result())


class RunningStats:
    """Per-coefficient mean and variance over chunks (Chan et al.'s merge),
    in float64 and in chunk order, so the result is exactly reproducible."""

    def __init__(self, size: int):
        self.count = 0
        self.mean = np.zeros(size)
        self.m2 = np.zeros(size)

    def update(self, x: np.ndarray) -> None:
        x = x.reshape(-1, self.mean.size).astype(np.float64)
        if len(x) == 0:
            return
        n, mean = len(x), x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        delta = mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta ** 2 * (self.count * n / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1))


def _extract_split(raw_dir: Path, rows, spec, scratch: Path, workers: int, stats):
    """Features of one split into a scratch memmap; return it, the kept mask."""
    paths = [os.path.join(raw_dir, r.path) for r in rows]
    shape = (len(rows), *spec.shape)
    out = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float32, shape=shape)
    kept = np.zeros(len(rows), bool)
    pending: list[np.ndarray] = []
    with tqdm(total=len(rows), desc="features", unit="clip", leave=False, disable=None,
              file=sys.stderr) as bar:
        for start, chunk, ok, errors in stream_features(paths, spec, workers):
            out[start:start + len(chunk)] = chunk
            kept[start:start + len(chunk)] = ok
            if stats is not None:
                pending.append(chunk[ok])
                if (start + len(chunk)) % STATS_BLOCK == 0:
                    stats.update(np.concatenate(pending))
                    pending = []
            for error in errors:
                tqdm.write(f"features: skipped {error}", file=sys.stderr)
            bar.update(len(chunk))
    if pending:
        stats.update(np.concatenate(pending))
    out.flush()
    return out, kept


def _normalised_chunks(raw: np.ndarray, kept: np.ndarray, spec):
    for start in range(0, len(raw), CHUNK):
        block = raw[start:start + CHUNK][kept[start:start + CHUNK]]
        if len(block):
            yield features.normalise(block, spec)


def run(params, raw_dir: Path, out_dir: Path, workers: int | None = None) -> dict:
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
    # The worker count changes speed only, never results: not a DVC param.
    workers = params.dataset.workers if workers is None else workers

    artifacts.clear_stale(out_dir)
    counts = {}
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.scratch.") as scratch, \
            artifacts.staged_dir(out_dir) as tmp:
        extracted = {}
        stats = RunningStats(spec.num_coefficients)
        # train first: its statistics normalise every split; test_engine only
        # when the dataset holds a speech engine out.
        for split in present({r.split for r in rows}):
            split_rows = [r for r in rows if r.split == split]
            raw, kept = _extract_split(raw_dir, split_rows, spec, Path(scratch) / f"{split}.npy",
                                       workers, stats if split == "train" else None)
            if not kept.any():
                raise ValueError(f"{raw_dir / 'manifest.csv'}: the {split} split has no readable clips")
            extracted[split] = (raw, kept, split_rows)
        spec = dataclasses.replace(spec, mean=tuple(float(v) for v in stats.mean),
                                   std=tuple(float(v) for v in np.maximum(stats.std, 1e-6)))
        for split, (raw, kept, split_rows) in extracted.items():
            ids = np.array([label_id[r.label] for r in split_rows], dtype=np.int32)[kept]
            names = np.array([r.path for r in split_rows])[kept]
            artifacts.save_npz_streamed(
                tmp / f"{split}.npz",
                x=artifacts.Streamed((int(kept.sum()), *spec.shape), np.float32,
                                     _normalised_chunks(raw, kept, spec)),
                y=ids, path=names)
            counts[split] = int(kept.sum())
            del raw
        spec.save(tmp / "spec.json")
    return counts


def _decode_chunk(paths: list[Path], spec: features.FeatureSpec) -> np.ndarray:
    return np.stack([audio.load_clip(p, spec.sample_rate, spec.clip_samples) for p in paths])


def stream_pcm(paths: list[Path], spec: features.FeatureSpec, workers: int = 0) -> np.ndarray:
    """Decode clips (all known to be readable) into one int16 array, in order."""
    out = np.zeros((len(paths), spec.clip_samples), np.int16)
    with ThreadPoolExecutor(workers or cpu.cores()) as pool:
        chunks = [(s, pool.submit(_decode_chunk, paths[s:s + CHUNK], spec))
                  for s in range(0, len(paths), CHUNK)]
        for start, future in chunks:
            block = future.result()
            out[start:start + len(block)] = block
    return out
