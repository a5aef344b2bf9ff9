"""Training epochs as the train stage runs them (keyspot.train: batches from
tf.data with autotuning off) against Keras' own numpy input (`model.fit(x,
y, class_weight=...)`, whose tf.data pipeline autotunes), on the pipeline's
training data and default config.

    python bench/train_epochs.py              # 6 epochs each way
    python bench/train_epochs.py --epochs 4

Each way is a fresh process that trains from the same initial weights; the
wall time of each epoch, the totals and their ratio are printed, and both
must end with the same weights (the change is in how batches are fed, not
in what they hold).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKER = r"""
import dataclasses, hashlib, json, sys, time
from pathlib import Path
from keyspot import checkpoint, features, params, train
from keyspot.features import FeatureSpec

way, epochs = sys.argv[1], int(sys.argv[2])
p = params.load()
train.make_deterministic(p.seed)
import keras

spec = FeatureSpec.load(Path("data/features/spec.json"))
data = train.EpochData(p, spec, Path("data/features"), Path("data/raw"))
x_val, y_val = features.load_split(Path("data/features"), "val")
val = (x_val, keras.utils.to_categorical(y_val, len(spec.labels)))
model = train.compile_model(p, spec, len(spec.labels), len(data.y))
if way == "keras-numpy":
    # What train did before: the arrays straight to Keras, whose own tf.data
    # pipeline batches them with autotuning on.
    @dataclasses.dataclass
    class Arrays:
        arrays: tuple
        batch_size: int
    train._batches = Arrays
    fit = model.fit
    def numpy_fit(batches, validation_data, epochs, shuffle, verbose):
        x, y, w = batches.arrays
        return fit(x, y, sample_weight=w, batch_size=batches.batch_size, validation_data=validation_data.arrays,
                   epochs=epochs, shuffle=shuffle, verbose=verbose)
    model.fit = numpy_fit
times, start = [], [time.time()]
def after(row):
    times.append(round(time.time() - start[0], 1)); start[0] = time.time()
object.__setattr__(p.train, "epochs", epochs)
train.fit(model, p, data, val, checkpoint.TrainingState(), after)
digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
print(json.dumps({"epochs": times, "weights": digest}))
"""

WAYS = ("keras-numpy", "keyspot")


def run(way: str, epochs: int) -> dict:
    result = subprocess.run([sys.executable, "-c", WORKER, way, str(epochs)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{way}: failed\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args(argv)
    results = {way: run(way, args.epochs) for way in WAYS}
    for way, r in results.items():
        print(f"{way:12s} epochs (s): {r['epochs']}  total {sum(r['epochs']):.1f} s")
    base, new = (sum(results[w]["epochs"]) for w in WAYS)
    print(f"keras-numpy / keyspot: {base / new:.2f}x")
    if results["keras-numpy"]["weights"] != results["keyspot"]["weights"]:
        print("the two ways ended with different weights", file=sys.stderr)
        return 1
    print("same weights both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
