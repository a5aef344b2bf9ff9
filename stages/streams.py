"""streams stage: data/raw, data/sentences -> data/streams/<split>.flac + manifest.csv.

Continuous streams of the held-out splits' clips (and sentences, where the
source read some) on a bed of their quiet, with each word's time (keyspot/data/streams.py), for calibrate and
stream-eval to run the device's chain over.
"""

from pathlib import Path

from keyspot import artifacts, params, stage
from keyspot.data import streams


def run():
    p = params.load()
    with artifacts.staged_dir(Path("data/streams")) as tmp:
        summary = streams.build(Path("data/raw"), tmp, p.streams, p.seed, p.dataset.sample_rate,
                                Path("data/sentences"))
    for split, s in summary.items():
        print(f"streams: {split} {s['seconds'] / 60:.1f} min, {s['keywords']} keywords, "
              f"{s['unknown']} other words" + (f", {s['sentences']} sentences" if s["sentences"] else ""))


if __name__ == "__main__":
    stage.main("streams", run)
