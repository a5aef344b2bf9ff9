"""`keyspot` command line: predict, errors, listen, compose, serve, deploy."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _predict(args) -> int:
    from keyspot.predict import Classifier, expand

    model = Path(args.model) if args.model else Path("models/model_int8.tflite" if args.int8 else "models/model.keras")
    from keyspot.audio import display_name

    try:
        classifier = Classifier(Path(args.spec), model)
    except IsADirectoryError as err:
        print(f"keyspot predict: error: {display_name(err.filename)} is a folder; --spec and --model "
              "name files", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:
        print(f"keyspot predict: error: {err}", file=sys.stderr)
        return 2
    failed, results = 0, []
    for path, result, error in classifier.classify(expand(args.paths)):
        name = display_name(path)
        if error:
            failed += 1
            print(f"keyspot predict: {error}", file=sys.stderr)
            if args.json:
                results.append({"path": name, "error": error})
            continue
        if args.json:
            results.append({"path": name, **result})
        else:
            top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            print(f"{name}\t{result['label']}\t" + "  ".join(f"{k}={v:.3f}" for k, v in top))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def _errors(args) -> int:
    from keyspot import mistakes

    try:
        worst = mistakes.worst(mistakes.predictions_file(args.split, Path(args.eval_dir)), args.int8,
                               args.label)[:args.top]
        if args.json:
            print(json.dumps([m.as_dict() for m in worst], indent=2))
        else:
            model = "int8" if args.int8 else "float"
            print(f"{len(worst)} worst mistakes of the {model} model on {args.split} (most confident first)")
            for rank, m in enumerate(worst, start=1):
                print(f"{rank:3d}  {m.actual:>10} as {m.predicted:<10} {m.probability:.3f}  {m.speaker}  "
                      f"{Path(args.raw) / m.path}")
        if args.copy:
            copies = mistakes.copy(worst, Path(args.raw), Path(args.copy))
            print(f"copied {len(copies)} clips to {args.copy}", file=sys.stderr)
        if args.play:
            mistakes.play(worst, Path(args.raw))
    except (mistakes.MistakesError, OSError) as err:
        print(f"keyspot errors: error: {err}", file=sys.stderr)
        return 2
    return 0


DEFAULT_GENERATED = "firmware/psoc6/source/generated"


def _generated_folder(args) -> Path:
    """--firmware, else export.out_dir of ./params.yaml, else the default folder."""
    if args.firmware:
        return Path(args.firmware)
    try:
        import yaml

        return Path(yaml.safe_load(Path("params.yaml").read_text())["export"]["out_dir"])
    except (OSError, KeyError, TypeError, ValueError):
        return Path(DEFAULT_GENERATED)


def _listen(args) -> int:
    from keyspot import audio
    from keyspot.features import FeatureSpec
    from keyspot.recognizer import RecognizerError, from_header, ignore_mask

    if bool(args.paths) == bool(args.mic):
        print("keyspot listen: error: give audio files or --mic (not both)", file=sys.stderr)
        return 2
    model_path = Path(args.model) if args.model else Path(
        "models/model.keras" if args.float else "models/model_int8.tflite")
    try:
        from keyspot.listen import load_model

        spec = FeatureSpec.load(Path(args.spec))
        # The board's parameters; the ignore mask from the model's own labels, by c-export's rule.
        params = from_header(_generated_folder(args)).replace(
            average_window_ms=args.window_ms, detection_threshold=args.threshold,
            suppression_ms=args.suppression_ms, minimum_count=args.minimum_count,
            ignore_mask=ignore_mask(spec.labels)).check(len(spec.labels))
        model = load_model(model_path, spec)
    except IsADirectoryError as err:
        print(f"keyspot listen: error: {audio.display_name(err.filename)} is a folder; --spec and "
              "--model name files", file=sys.stderr)
        return 2
    except (OSError, ValueError, RecognizerError) as err:
        print(f"keyspot listen: error: {err}", file=sys.stderr)
        return 2
    if args.mic:
        from keyspot.listen_mic import MicError, listen_mic

        try:
            return listen_mic(spec, model, params, as_json=args.json)
        except MicError as err:
            print(f"keyspot listen: {err}", file=sys.stderr)
            return 2
    from keyspot.listen import listen_file
    from keyspot.predict import expand

    failed, results = 0, []
    for path in expand(args.paths):
        name = audio.display_name(path)
        try:
            found = listen_file(spec, model, params, path)
        except audio.AudioError as err:
            failed += 1
            print(f"keyspot listen: {err}", file=sys.stderr)
            if args.json:
                results.append({"path": name, "error": str(err)})
            continue
        if args.json:
            results.append({"path": name, "detections": [d.as_dict() for d in found]})
            continue
        for d in found:
            print(f"{name}\t{d.time_ms / 1000:8.2f} s\t{d.label}\t{d.score / 256:.3f}")
        if not found:
            print(f"{name}\t(no keyword)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def _compose(args) -> int:
    from keyspot.compose import ComposeError, compose, write_params
    from keyspot.params import ParamsError, from_dict

    try:
        data = compose(args.conf, args.overrides)
        from_dict(data)
    except (ComposeError, ParamsError) as err:
        print(f"keyspot compose: error: {err}", file=sys.stderr)
        return 2
    write_params(data, args.output)
    print(f"wrote {args.output}")
    return 0


def _serve(args) -> int:
    from keyspot.serve.server import Options, ServeError, serve

    options = Options(host=args.host, port=args.port, workers=args.workers, model_dir=Path(args.model_dir),
                      spec=Path(args.spec) if args.spec else None,
                      model=Path(args.model) if args.model else None, int8=args.int8,
                      max_body_bytes=args.max_body_bytes, max_clip_seconds=args.max_clip_seconds,
                      firmware=_generated_folder(args))
    try:
        serve(options)
    except ServeError as err:
        print(f"keyspot serve: error: {err}", file=sys.stderr)
        return 2
    return 0


def _deploy_delete(args) -> int:
    from keyspot.deploy import DeployError
    from keyspot.params import ParamsError, load

    try:
        cfg = load(args.params).deploy
        from keyspot.deploy import sagemaker

        deleted = sagemaker.delete(cfg)
    except (ParamsError, DeployError) as err:
        print(f"keyspot deploy delete: error: {err}", file=sys.stderr)
        return 2
    for kind, name in deleted:
        print(f"deleted {kind} {name}")
    if not deleted:
        print(f"nothing to delete: no endpoint {cfg.endpoint_name!r} nor its configurations or models "
              f"in {cfg.region}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keyspot")
    except PackageNotFoundError:   # run from a checkout that was never installed
        return "unknown (not installed; run `make setup`)"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="keyspot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"keyspot {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="label WAV files or folders of them")
    predict.add_argument("paths", nargs="+", help="audio files or folders")
    predict.add_argument("--int8", action="store_true", help="use models/model_int8.tflite")
    predict.add_argument("--model", help="a .keras or .tflite file (default: the pipeline's)")
    predict.add_argument("--spec", default="data/features/spec.json", help="feature spec (default: %(default)s)")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.set_defaults(func=_predict)

    errs = commands.add_parser("errors", help="list the model's worst mistakes on a test split; play or "
                               "copy their clips")
    errs.add_argument("--split", default="test", choices=["test", "test_engine"], help="default: %(default)s")
    errs.add_argument("--int8", action="store_true", help="the int8 model's mistakes (default: the float model's)")
    errs.add_argument("--label", help="only clips of this label")
    errs.add_argument("--top", type=int, default=20, help="how many (default: %(default)s)")
    errs.add_argument("--copy", metavar="DIR", help="copy the clips here, named rank_actual_as_predicted_name")
    errs.add_argument("--play", action="store_true", help="play them with sox's `play`")
    errs.add_argument("--json", action="store_true", help="machine-readable output")
    errs.add_argument("--eval-dir", default="reports/eval", help="default: %(default)s")
    errs.add_argument("--raw", default="data/raw", help="the dataset folder (default: %(default)s)")
    errs.set_defaults(func=_errors)

    lis = commands.add_parser("listen", help="find keywords in recordings of any length, or live on the "
                              "microphone, as the board would (frontend, model, recognizer)")
    lis.add_argument("paths", nargs="*", help="audio files or folders")
    lis.add_argument("--mic", action="store_true", help="listen to the default microphone until Ctrl-C")
    which = lis.add_mutually_exclusive_group()
    which.add_argument("--int8", action="store_true",
                       help="the board's model, models/model_int8.tflite (the default)")
    which.add_argument("--float", action="store_true", help="models/model.keras")
    which.add_argument("--model", help="a .tflite or .keras file")
    lis.add_argument("--spec", default="data/features/spec.json", help="feature spec (default: %(default)s)")
    lis.add_argument("--firmware", help="generated firmware folder whose recognizer_config.h gives the "
                     f"recognizer's parameters (default: export.out_dir, {DEFAULT_GENERATED})")
    lis.add_argument("--threshold", type=int, help="detection threshold, 0..255 (averaged score must exceed it)")
    lis.add_argument("--window-ms", type=int, help="averaging window in ms")
    lis.add_argument("--suppression-ms", type=int, help="no detection this long after one")
    lis.add_argument("--minimum-count", type=int, help="results needed in the averaging window")
    lis.add_argument("--json", action="store_true", help="machine-readable output")
    lis.set_defaults(func=_listen)

    comp = commands.add_parser("compose", help="compose conf/ into params.yaml")
    comp.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smoke")
    comp.add_argument("--conf", default="conf")
    comp.add_argument("-o", "--output", default="params.yaml")
    comp.set_defaults(func=_compose)

    srv = commands.add_parser("serve", help="serve the model over HTTP (SageMaker's /ping and /invocations)")
    srv.add_argument("--port", type=int, default=8080, help="default: %(default)s")
    srv.add_argument("--host", default="127.0.0.1", help="default: %(default)s; 0.0.0.0 in a container")
    srv.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU core)")
    srv.add_argument("--model-dir", default="models",
                     help="the pipeline's models/ or an extracted model.tar.gz (default: %(default)s)")
    srv.add_argument("--spec", help="feature spec (default: data/features/spec.json, or the model dir's)")
    srv.add_argument("--model", help="serve this .tflite file instead of the model dir's SavedModel")
    srv.add_argument("--int8", action="store_true", help="serve <model-dir>/model_int8.tflite")
    srv.add_argument("--max-body-bytes", type=int, default=4 << 20, help="larger bodies get 413 (default: %(default)s)")
    srv.add_argument("--max-clip-seconds", type=float, default=10.0,
                     help="longer clips get 413 (default: %(default)s)")
    srv.add_argument("--firmware", help="generated firmware folder whose recognizer_config.h the listening "
                     f"mode uses (default: export.out_dir, {DEFAULT_GENERATED})")
    srv.set_defaults(func=_serve)

    deploy = commands.add_parser("deploy", help="manage the SageMaker endpoint of deploy.* in params.yaml")
    deploy_commands = deploy.add_subparsers(dest="deploy_command", required=True)
    delete = deploy_commands.add_parser("delete", help="delete the endpoint, its configurations and models")
    delete.add_argument("--params", default="params.yaml", help="default: %(default)s")
    delete.set_defaults(func=_deploy_delete)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
