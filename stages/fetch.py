"""fetch: write the configured dataset into data/raw/ (clips, manifest.csv,
labels.json), and into data/sentences/ what its held-out speakers read for
the streams (sentences.csv and the recordings; none for most sources)."""

from pathlib import Path

from keyspot import params, stage
from keyspot.data import report, sources

OUT = Path("data/raw")
SENTENCES = Path("data/sentences")
REPORT = Path("reports/data.json")
PLOTS = Path("reports/data")


def run():
    p = params.load()
    summary = sources.fetch(p.dataset, p.seed, OUT)
    print(summary.line())
    print(summary.table())
    print(report.line(report.write(summary, p.dataset, OUT, REPORT, PLOTS), REPORT))
    read = sources.fetch_sentences(p.dataset, p.seed, SENTENCES)
    if read:
        print(f"fetch: {read} sentences read for the streams in {SENTENCES}")


if __name__ == "__main__":
    stage.main("fetch", run)
