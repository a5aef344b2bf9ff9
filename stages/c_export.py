"""c-export: write the int8 model, labels, feature spec and calibrated recognizer as C into the firmware
tree, and reports/firmware.json: the engine, the model's flash and the RAM it and the audio chain take."""

import argparse
import json
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
                   engine=p.export.engine, recognizer=recognizer, firmware_report=args.firmware_report)
    report = json.loads(Path(args.firmware_report).read_text())
    print(f"c-export: wrote {len(files)} files to {p.export.out_dir}/ ({report['model_bytes']} model bytes "
          f"in flash, {report['ram_bytes']} bytes of RAM with the audio chain; {args.firmware_report})")
    from keyspot import tracking

    version = tracking.log_generated_sources(p, args.model, p.export.out_dir, args.firmware_report)
    if version is not None:
        print(f"c-export: {tracking.registered_model_name(p)} version {version} is now @{p.tracking.alias}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/model_int8.tflite")
    parser.add_argument("--spec", default="data/features/spec.json")
    parser.add_argument("--report", default="reports/quantize.json")
    parser.add_argument("--calibration", default="reports/calibration.json")
    parser.add_argument("--firmware-report", default="reports/firmware.json")
    args = parser.parse_args(argv)
    return stage.run("c-export", lambda: export_and_log(args))


if __name__ == "__main__":
    sys.exit(main())
