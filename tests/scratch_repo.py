"""A scratch git + DVC copy of this checkout, reproduced on the smoke config.

`tests/conftest.py` builds one per test session (the `pipeline` fixture);
test_pipeline.py and test_remote.py both use it, so the whole pipeline runs
once. Tests that change the scratch repo put it back as they found it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
GIT = ["git", "-c", "init.defaultBranch=main"]


def run(args, cwd, env, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def build(repo: Path, root: Path, params: dict, tracking_uri: str | None = None) -> dict:
    """Copy `repo`'s files into a new git repo at `root`, write `params`, `dvc repro`, commit.
    MLflow logs to `tracking_uri`, else to a SQLite store next to `root`."""
    from keyspot.compose import write_params

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (repo / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, root / name)
    # A lock file from another config would only be rewritten; start clean.
    (root / "dvc.lock").unlink(missing_ok=True)
    # `make setup` writes the offline template of `dvc plots show` (ignored by git).
    from keyspot import plots_offline

    plots_offline.write_template(root, plots_offline.install(progress=False))
    write_params(params, root / "params.yaml")

    env = {**os.environ,
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": tracking_uri or f"sqlite:///{root.parent / 'mlflow.db'}",
           "GIT_AUTHOR_NAME": "keyspot", "GIT_AUTHOR_EMAIL": "keyspot@example.com",
           "GIT_COMMITTER_NAME": "keyspot", "GIT_COMMITTER_EMAIL": "keyspot@example.com",
           "DVC_NO_ANALYTICS": "1"}
    run([*GIT, "init", "-q"], root, env)
    run([*GIT, "add", "-A"], root, env)
    run([*GIT, "commit", "-q", "-m", "smoke"], root, env)
    repro = run(["dvc", "repro"], root, env)
    run([*GIT, "add", "-A"], root, env)
    run([*GIT, "commit", "-q", "-m", "reproduced"], root, env)
    return {"root": root, "env": env, "repro": repro.stdout, "git": GIT}


def output_hashes(root: Path) -> dict[str, str]:
    """md5 of every file inside every stage output that dvc.lock names, by path."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    hashes = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            path = root / out["path"]
            for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if file.is_file():
                    hashes[file.relative_to(root).as_posix()] = hashlib.md5(file.read_bytes()).hexdigest()
    return hashes


# Outputs that carry keyspot's own code: model.tar.gz packs the serving
# modules and deploy.json names its hash. Every other output must keep its
# bytes when the code is only reorganised.
CODE_OUTPUTS = ("models/sagemaker/model.tar.gz", "reports/deploy.json")
RECORDED = Path(__file__).with_name("smoke_outputs.json")


def smoke_output_hashes(root: Path) -> dict[str, str]:
    return {path: md5 for path, md5 in output_hashes(root).items() if path not in CODE_OUTPUTS}


def record(root: Path) -> None:
    """Write RECORDED from the reproduced smoke repo at `root`."""
    import json

    RECORDED.write_text(json.dumps({
        "generated": "by `python tests/scratch_repo.py record`: the md5 of every output of the smoke "
                     "pipeline (conf/experiment/smoke.yaml) but " + ", ".join(CODE_OUTPUTS),
        "outputs": smoke_output_hashes(root)}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from keyspot.compose import compose

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "repo").mkdir()
        build(repo, Path(tmp) / "repo", compose(repo / "conf", ["experiment=smoke"]))
        record(Path(tmp) / "repo")
    print(f"wrote {RECORDED}")
