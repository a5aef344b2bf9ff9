"""c-export: write the int8 model, labels, feature spec and calibrated recognizer as C into the firmware tree."""

import argparse
import sys
from pathlib import Path

from keyspot import params, stage
from keyspot.calibration import load_recognizer
from keyspot.export import export


def export_and_log(args: argparse.Namespace) -> None:
    for path in (args.model, args.spec, args.report):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} not found; run `dvc repro quantize`")
    # The recognizer as calibrate chose it (export.recognizer when calibration is off).
    recognizer = load_recognizer(args.calibration)
    p = params.load()
    files = export(args.model, args.spec, args.report, p.export.out_dir,
                   engine=p.export.engine, recognizer=recognizer)
    print(f"c-export: wrote {len(files)} files to {p.export.out_dir}/ "
          f"({Path(args.model).stat().st_size} model bytes)")
    from keyspot import tracking

    version = tracking.log_generated_sources(p, args.model, p.export.out_dir)
    if version is not None:
        print(f"c-export: {tracking.registered_model_name(p)} version {version} is now @{p.tracking.alias}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/model_int8.tflite")
    parser.add_argument("--spec", default="data/features/spec.json")
    parser.add_argument("--report", default="reports/quantize.json")
    parser.add_argument("--calibration", default="reports/calibration.json")
    args = parser.parse_args(argv)
    return stage.run("c-export", lambda: export_and_log(args))


if __name__ == "__main__":
    sys.exit(main())
