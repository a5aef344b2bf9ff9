"""calibrate's search: every parameter set tried on the validation stream.

keyspot's way (keyspot.streaming.calibrate): each averaging window is
averaged once per stream and kept, and a false accept's word is looked up
by time once. The plain way: every parameter set averages the stream
afresh (keyspot.recognizer.detect with nothing kept), as calibration did
before. Both run on the pipeline's int8 scores of data/streams/val.flac
(scored once, not timed) over the calibrate.* grid of params.yaml, with
its first `--windows` averaging windows. Prints both times and their
ratio, and checks that both give the same table.

    python bench/calibration_bench.py                # two windows' sets
    python bench/calibration_bench.py --windows 0    # the whole grid
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def plain_table(streams, labels, base, windows, counts, suppressions, thresholds) -> list[dict]:
    """Each parameter set on fresh copies of the streams, in calibrate's
    order: nothing kept from one set to the next."""
    from keyspot import streaming
    from keyspot.recognizer import detect

    rows = []
    for window, count, suppression in itertools.product(windows, counts, suppressions):
        for threshold in sorted(thresholds, reverse=True):
            params = base.replace(average_window_ms=window, minimum_count=count, suppression_ms=suppression,
                                  detection_threshold=threshold)
            fresh = [streaming.ScoredStream(s.split, s.seconds, s.times, s.scores, s.words) for s in streams]
            outcomes = [streaming.match(s, detect(s.times, s.scores, params), labels) for s in fresh]
            rows.append({"average_window_ms": window, "minimum_count": count, "suppression_ms": suppression,
                         "detection_threshold": threshold, **streaming._pooled(outcomes)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=2, help="averaging windows of the grid to try (0: all)")
    args = parser.parse_args()

    from keyspot import params as params_module
    from keyspot import streaming
    from keyspot.features import FeatureSpec
    from keyspot.listen import load_model
    from keyspot.recognizer import from_settings

    p = params_module.load(REPO / "params.yaml")
    c = p.calibrate
    spec = FeatureSpec.load(REPO / "data/features/spec.json")
    base = from_settings(p.export.recognizer, spec.labels)
    scored = streaming.score_streams(spec, load_model(REPO / "models/model_int8.tflite", spec), base,
                                     REPO / "data/streams", ["val"])
    if not scored:
        sys.exit("data/streams/val.flac: missing; run `dvc repro streams` first")
    windows = c.average_window_ms[:args.windows] if args.windows else c.average_window_ms
    grid = (windows, c.minimum_count, c.suppression_ms, range(0, 256, c.threshold_step))

    start = time.perf_counter()
    plain = plain_table(scored, spec.labels, base, *grid)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    _, kept = streaming.calibrate(scored, spec.labels, base, c.target_false_accepts_per_hour, *grid)
    kept_s = time.perf_counter() - start

    if kept != plain:
        sys.exit("the two ways gave different tables")
    print(f"{len(kept)} parameter sets on {scored[0].seconds / 60:.0f} minutes of validation stream")
    print(f"plain (averaged afresh for every set): {plain_s:.2f} s")
    print(f"keyspot (each window averaged once):   {kept_s:.2f} s")
    print(f"ratio: {plain_s / kept_s:.2f}x, the same table")


if __name__ == "__main__":
    main()
