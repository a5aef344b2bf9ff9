"""c-export: write the int8 model, labels and feature spec as C into the firmware tree."""

import argparse
import sys
from pathlib import Path

import keyspot.params
from keyspot import redact
from keyspot.export import ExportError, export


def main(argv: list[str] | None = None) -> int:
    redact.install()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/model_int8.tflite")
    parser.add_argument("--spec", default="data/features/spec.json")
    parser.add_argument("--report", default="reports/quantize.json")
    args = parser.parse_args(argv)
    for path in (args.model, args.spec, args.report):
        if not Path(path).is_file():
            print(f"c-export: {path} not found; run `dvc repro quantize`", file=sys.stderr)
            return 2
    try:
        params = keyspot.params.load()
        files = export(args.model, args.spec, args.report, params.export.out_dir,
                       engine=params.export.engine, recognizer=params.export.recognizer)
    except keyspot.params.ParamsError as err:
        print(f"c-export: {err}", file=sys.stderr)
        return 2
    except (ExportError, ValueError) as err:
        print(f"c-export: {err}", file=sys.stderr)
        return 1
    print(f"c-export: wrote {len(files)} files to {params.export.out_dir}/ "
          f"({Path(args.model).stat().st_size} model bytes)")
    from keyspot import tracking

    version = tracking.log_generated_sources(params, args.model, params.export.out_dir)
    if version is not None:
        print(f"c-export: {tracking.registered_model_name(params)} version {version} "
              f"is now @{params.tracking.alias}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
