"""fetch: write the configured dataset into data/raw/ (clips, manifest.csv, labels.json)."""

from pathlib import Path

from keyspot import params, stage
from keyspot.data import report, sources

OUT = Path("data/raw")
REPORT = Path("reports/data.json")
PLOTS = Path("reports/data")


def run():
    p = params.load()
    summary = sources.fetch(p.dataset, p.seed, OUT)
    print(summary.line())
    print(summary.table())
    print(report.line(report.write(summary, p.dataset, OUT, REPORT, PLOTS), REPORT))


if __name__ == "__main__":
    stage.main("fetch", run)
