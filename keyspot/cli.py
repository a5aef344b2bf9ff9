"""`keyspot` command line: predict, compose, serve, deploy."""

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
                      max_body_bytes=args.max_body_bytes, max_clip_seconds=args.max_clip_seconds)
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
