"""`keyspot` command line: predict, compose."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _predict(args) -> int:
    from keyspot.predict import Classifier, expand

    model = Path(args.model) if args.model else Path("models/model_int8.tflite" if args.int8 else "models/model.keras")
    try:
        classifier = Classifier(Path(args.spec), model)
    except (FileNotFoundError, ValueError) as err:
        print(f"keyspot predict: error: {err}", file=sys.stderr)
        return 2
    failed, results = 0, []
    for path, result, error in classifier.classify(expand(args.paths)):
        if error:
            failed += 1
            print(f"keyspot predict: {error}", file=sys.stderr)
            continue
        if args.json:
            results.append({"path": str(path), **result})
        else:
            top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            print(f"{path}\t{result['label']}\t" + "  ".join(f"{k}={v:.3f}" for k, v in top))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def _compose(args) -> int:
    from keyspot.compose import compose, write_params
    from keyspot.params import ParamsError, from_dict

    data = compose(args.conf, args.overrides)
    try:
        from_dict(data)
    except ParamsError as err:
        print(f"keyspot compose: error: {err}", file=sys.stderr)
        return 2
    write_params(data, args.output)
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="keyspot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="label WAV files or folders of them")
    predict.add_argument("paths", nargs="+", help="audio files or folders")
    predict.add_argument("--int8", action="store_true", help="use models/model_int8.tflite")
    predict.add_argument("--model", help="a .keras or .tflite file (default: the pipeline's)")
    predict.add_argument("--spec", default="data/features/spec.json", help="feature spec (default: %(default)s)")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.set_defaults(func=_predict)

    comp = commands.add_parser("compose", help="compose conf/ into params.yaml")
    comp.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smoke")
    comp.add_argument("--conf", default="conf")
    comp.add_argument("-o", "--output", default="params.yaml")
    comp.set_defaults(func=_compose)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
