"""Start-up of `keyspot predict --int8`: the command as it is (LiteRT's
interpreter with TFLite's reference kernels, no TensorFlow) against the same
work done the way it was done before, by TensorFlow's own TFLite interpreter
(`import tensorflow`, tf.lite.Interpreter with reference kernels).

    python bench/predict_startup.py                      # the pipeline's model and a test clip
    python bench/predict_startup.py --model M.tflite --spec S.json --clip C.wav

Each variant is a fresh process (what a user waits for at the prompt), run
--repeat times; the medians and their ratio are printed. Both label the clip
and must agree on the label.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# What `keyspot predict --int8` did before: the same classifier steps on
# TensorFlow's interpreter.
BASELINE = """
import sys
from pathlib import Path
from keyspot import audio, features
from keyspot.features import FeatureSpec
from keyspot.tflite_runner import TFLiteRunner
spec = FeatureSpec.load(Path(sys.argv[1]))
runner = TFLiteRunner.reference(Path(sys.argv[2]).read_bytes())
pcm = audio.load_clip(Path(sys.argv[3]), spec.sample_rate, spec.clip_samples)
p = runner(features.compute(pcm, spec)[..., None])[0]
print(spec.labels[int(p.argmax())])
"""


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/model_int8.tflite")
    parser.add_argument("--spec", default="data/features/spec.json")
    parser.add_argument("--clip", help="a WAV file (default: the first test clip of data/raw)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    clip = args.clip or next(line.split(",")[0] for line in
                             Path("data/raw/manifest.csv").read_text().splitlines()[1:] if ",test," in line)
    clip = str(Path(args.clip) if args.clip else Path("data/raw") / clip)
    now = [sys.executable, "-m", "keyspot.cli", "predict", "--json", "--int8", "--model", args.model,
           "--spec", args.spec, clip]
    before = [sys.executable, "-c", BASELINE, args.spec, args.model, clip]
    runs = {"predict --int8 (LiteRT)": [], "before (TensorFlow's interpreter)": []}
    labels = {}
    for _ in range(args.repeat):   # interleaved, so that a busy moment hits both
        seconds, out = timed(now)
        runs["predict --int8 (LiteRT)"].append(seconds)
        labels["now"] = json.loads(out)[0]["label"]
        seconds, out = timed(before)
        runs["before (TensorFlow's interpreter)"].append(seconds)
        labels["before"] = out.strip()
    if labels["now"] != labels["before"]:
        print(f"the two disagree on {clip}: {labels}", file=sys.stderr)
        return 1
    medians = {name: statistics.median(times) for name, times in runs.items()}
    print(f"clip {clip} -> {labels['now']}; {args.repeat} runs each, fresh processes")
    for name, median in medians.items():
        print(f"  {name:<36} median {median:6.2f} s  (min {min(runs[name]):.2f} s)")
    now_s, before_s = medians.values()
    print(f"ratio before / now: {before_s / now_s:.1f}x faster to start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
