"""Training with keyspot.portable_ops (the same bits on every x86-64 CPU)
against TensorFlow's own kernels, on the pipeline's training features and
default model.

    python bench/portable_ops_bench.py               # 3 epochs of 4,096 clips each way
    python bench/portable_ops_bench.py --epochs 2 --clips 2048

Each way is a fresh process that builds the same model from the same seed
and trains on the same clips (features as the features stage wrote them,
without augmentation, which costs the same both ways); the wall time of
each epoch after the first (which traces the graph), the totals and their
ratio are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKER = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from keyspot import params, portable_ops, train
from keyspot.features import FeatureSpec

way, epochs, clips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if way == "tensorflow":
    portable_ops.install = lambda softmax=True: None   # train.make_deterministic installs them
p = params.load()
train.make_deterministic(p.seed)
import keras

spec = FeatureSpec.load(Path("data/features/spec.json"))
with np.load("data/features/train.npz") as data:
    x, y = data["x"][:clips, ..., None], data["y"][:clips]
y = keras.utils.to_categorical(y, len(spec.labels))
weights = np.ones(len(x), np.float32)
model = train.compile_model(p, spec, len(spec.labels), len(x))
times = []
for epoch in range(epochs + 1):
    start = time.perf_counter()
    model.fit(train._batches((x, y, weights), p.train.batch_size), epochs=1, shuffle=False, verbose=0)
    times.append(round(time.perf_counter() - start, 2))
print(json.dumps({"epochs": times[1:]}))
"""


def run(way: str, epochs: int, clips: int) -> list[float]:
    done = subprocess.run([sys.executable, "-c", WORKER, way, str(epochs), str(clips)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{way}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["epochs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--clips", type=int, default=4096)
    args = parser.parse_args()
    totals = {}
    for way in ("tensorflow", "portable"):
        times = run(way, args.epochs, args.clips)
        totals[way] = sum(times)
        print(f"{way:>10}: epochs {times} s, {totals[way]:.1f} s", flush=True)
    print(f"portable / tensorflow: {totals['portable'] / totals['tensorflow']:.2f}x the time")


if __name__ == "__main__":
    main()
