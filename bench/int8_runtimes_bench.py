"""quantize's and evaluate's int8 runs: one interpreter against one per core.

Both stages run every test clip through the int8 model one at a time, on
TensorFlow Lite's reference kernels and (quantize) on TensorFlow Lite
Micro. The plain way runs one interpreter of each in turn, as the stages
did before. keyspot's way (keyspot.quantize.predict_both, which quantize
runs) splits the clips over the cores: TFLite's interpreters on threads
(the interpreter lets go of the GIL while it runs) and TFLite Micro's on
spawned processes (it holds the GIL), both at once. Runs the pipeline's
models/model_int8.tflite on the first `--clips` clips of data/features'
test split; prints both times, their ratio, and checks that both give the
same outputs.

    python bench/int8_runtimes_bench.py                # 1,000 clips
    python bench/int8_runtimes_bench.py --clips 0      # the whole test split
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000, help="test clips to run (0: all)")
    args = parser.parse_args()

    from keyspot import features
    from keyspot.cpu import cores
    from keyspot.quantize import predict_both, predict_tflm
    from keyspot.tflite_runner import TFLiteRunner

    model_path, report_path = REPO / "models/model_int8.tflite", REPO / "reports/quantize.json"
    if not model_path.exists() or not report_path.exists():
        sys.exit(f"{model_path.relative_to(REPO)}: missing; run `dvc repro quantize` first")
    model = model_path.read_bytes()
    arena = json.loads(report_path.read_text())["tflm_arena_bytes"]
    x, _ = features.load_split(REPO / "data/features", "test")
    x = x[:args.clips] if args.clips else x
    TFLiteRunner.reference(model).outputs(x[:1])   # TensorFlow imported before either clock starts

    start = time.perf_counter()
    plain = TFLiteRunner.reference(model).outputs(x), predict_tflm(model, x, arena)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    split = predict_both(model, x, arena)
    split_s = time.perf_counter() - start

    if not all(np.array_equal(a, b) for a, b in zip(plain, split, strict=True)):
        sys.exit("the two ways gave different outputs")
    print(f"{len(x)} test clips on TFLite's reference kernels and on TFLite Micro, {cores()} cores")
    print(f"plain (one interpreter each, in turn): {plain_s:.2f} s")
    print(f"keyspot (one per core, both at once):  {split_s:.2f} s")
    print(f"ratio: {plain_s / split_s:.2f}x, the same outputs")


if __name__ == "__main__":
    main()
