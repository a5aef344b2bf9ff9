"""`keyspot listen`'s speed: audio seconds per wall-clock second, on one core.

keyspot's way (keyspot.listen.Listener, what `keyspot listen` runs): each
20 ms feature frame is computed once, as the board does, and the model runs
on the last 49 frames every 100 ms. The tutorial way (TensorFlow's
`test_streaming_accuracy` and most notebooks): every 100 ms, cut the last
second of audio and compute all of its features again before running the
model. Both run the pipeline's int8 model on the LiteRT interpreter, pinned
to one core, over the same stream: the first `--seconds` of
data/streams/test.flac. Prints both speeds and their ratio, and checks that
both give the model the same scores.

    python bench/listen_bench.py               # a minute of the test stream
    python bench/listen_bench.py --seconds 300
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def tutorial_scores(pcm: np.ndarray, spec, model, frames_per_inference: int) -> np.ndarray:
    """Every 100 ms, the features of the whole last second, computed afresh."""
    from keyspot import features

    rows = []
    # The inference whose newest frame is j looks at samples from (j - 48) * hop.
    for newest in range(frames_per_inference - 1, features.frame_count(len(pcm), spec), frames_per_inference):
        start = (newest - spec.num_frames + 1) * spec.hop_samples
        clip = pcm[max(0, start):start + spec.clip_samples]
        if start < 0 or len(clip) < spec.clip_samples:
            continue   # the board's first second, neutral-padded, has no tutorial twin
        rows.append(model.scores(features.compute(clip, spec)))
    return np.concatenate(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--stream", default=str(REPO / "data/streams/test.flac"))
    parser.add_argument("--model", default=str(REPO / "models/model_int8.tflite"))
    parser.add_argument("--spec", default=str(REPO / "data/features/spec.json"))
    args = parser.parse_args()
    for path in (args.stream, args.model, args.spec):
        if not Path(path).is_file():
            print(f"listen_bench: {path}: missing; run `dvc repro` (or `dvc pull`) first", file=sys.stderr)
            return 2
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
    from keyspot import audio
    from keyspot.features import FeatureSpec
    from keyspot.listen import FRAMES_PER_INFERENCE, Listener, TFLiteModel
    from keyspot.recognizer import RecognizerParams

    spec = FeatureSpec.load(args.spec)
    model = TFLiteModel.load(Path(args.model).read_bytes(), spec)
    pcm = audio.load_pcm(args.stream, spec.sample_rate)[:int(args.seconds * spec.sample_rate)]
    seconds = len(pcm) / spec.sample_rate
    model.scores(np.zeros((1, *spec.shape), np.float32))   # warm up the interpreter

    start = time.perf_counter()
    listener = Listener(spec, model, RecognizerParams())
    times, ours = listener.scores(pcm)
    listener.detections(times, ours)
    keyspot_s = time.perf_counter() - start

    start = time.perf_counter()
    theirs = tutorial_scores(pcm, spec, model, FRAMES_PER_INFERENCE)
    tutorial_s = time.perf_counter() - start

    # Once the first second is in, both give the model the same windows.
    full = ours[len(ours) - len(theirs):]
    differ = int(np.abs(full.astype(int) - theirs.astype(int)).max())
    print(f"{seconds:.0f} s of {Path(args.stream).name}, {len(ours)} inferences, one core")
    print(f"  keyspot listen (each frame once):      {seconds / keyspot_s:8.0f} audio s per s")
    print(f"  tutorial (each second's features anew): {seconds / tutorial_s:8.0f} audio s per s")
    print(f"  ratio: {tutorial_s / keyspot_s:.1f}x; largest score difference {differ} of 255")
    return 0


if __name__ == "__main__":
    sys.exit(main())
