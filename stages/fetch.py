"""fetch: write the configured dataset into data/raw/ (clips, manifest.csv, labels.json)."""

import sys
from pathlib import Path

import keyspot.params
from keyspot.data import archive, download, folder, report, sources, speech_commands, synthetic, tts

OUT = Path("data/raw")
REPORT = Path("reports/data.json")
PLOTS = Path("reports/data")


def main() -> int:
    try:
        params = keyspot.params.load()
        summary = sources.fetch(params.dataset, params.seed, OUT)
    except (keyspot.params.ParamsError, tts.MissingToolError) as err:
        print(f"fetch: {err}", file=sys.stderr)
        return 2
    except (synthetic.FetchError, download.DownloadError, archive.ArchiveError,
            speech_commands.DatasetError, folder.FolderError) as err:
        print(f"fetch: {err}", file=sys.stderr)
        return 1
    print(summary.line())
    print(summary.table())
    print(report.line(report.write(summary, params.dataset, OUT, REPORT, PLOTS), REPORT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
