"""dvc.yaml's deps cover every module a stage imports, so that `dvc status`
cannot call a stage up to date after a change that alters its outputs.

Each stage's command is `python stages/<name>.py`; the keyspot modules it
imports, directly or through others, at the top of a file or inside a
function, are read from the source (ast), and each must lie in a file or
folder the stage lists as a dep. The only ones left out are those in
NOT_OUTPUTS, which cannot change what a stage writes; their own imports are
not followed (what sagemaker_jobs imports is where a stage runs, too). A
package `__init__.py` that holds only its docstring is left out as well.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# Modules that cannot change a stage's outputs, and why.
NOT_OUTPUTS = {
    "keyspot/params.py": "types and checks params.yaml, whose values dvc.yaml lists as params",
    "keyspot/schema.py": "declares keys, defaults and rules; a value reaches a stage only through params.yaml",
    "keyspot/stage.py": "how a failure is reported and the exit status",
    "keyspot/errors.py": "the base class of those failures",
    "keyspot/redact.py": "hides credentials in messages",
    "keyspot/tracking.py": "where runs are logged (MLflow)",
    "keyspot/quiet_tf.py": "what TensorFlow prints on stderr while it loads",
    "keyspot/sagemaker_jobs": "where features and train run (backend: sagemaker)",
}


def _module_file(root: Path, dotted: str) -> Path | None:
    path = root.joinpath(*dotted.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imported_files(root: Path, source: Path) -> set[Path]:
    """The keyspot module files `source` imports (packages' __init__.py included)."""
    rel = source.relative_to(root).with_suffix("")
    package = list(rel.parts[:-1])   # for a/b.py and a/__init__.py alike: a
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)   # a submodule, or an attribute
    files = set()
    for name in names:
        if name.split(".")[0] != "keyspot":
            continue
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            if (found := _module_file(root, ".".join(parts[:end]))) is not None:
                files.add(found)
    return files


def _exempt(root: Path, path: Path) -> bool:
    rel = path.relative_to(root).as_posix()
    if any(rel == key or rel.startswith(key + "/") for key in NOT_OUTPUTS):
        return True
    if path.name == "__init__.py":
        body = ast.parse(path.read_text(encoding="utf-8")).body
        return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)
    return False


def undeclared(root: Path) -> dict[str, list[str]]:
    """Stage -> the imported module files none of its deps cover."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    found = {}
    for name, stage in stages.items():
        script = root / stage["cmd"].split()[1]
        deps = [d.rstrip("/") for d in stage.get("deps", [])]
        seen, todo = set(), [script]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            todo.extend(f for f in _imported_files(root, path) if not _exempt(root, f))
        missing = sorted(rel for rel in (p.relative_to(root).as_posix() for p in seen)
                         if not any(rel == d or rel.startswith(d + "/") for d in deps))
        if missing:
            found[name] = missing
    return found


def test_every_stage_depends_on_every_module_it_imports():
    assert undeclared(REPO) == {}, "add these to the stage's deps in dvc.yaml (or, if they cannot " \
                                   "change its outputs, to NOT_OUTPUTS with the reason)"


def test_the_check_catches_a_new_import_that_is_not_a_dependency(tmp_path):
    for part in ("dvc.yaml", "stages", "keyspot"):
        src = REPO / part
        (shutil.copytree(src, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
         if src.is_dir() else shutil.copy(src, tmp_path / part))
    assert undeclared(tmp_path) == {}
    (tmp_path / "keyspot/calibration.py").write_text("SCALE = 2\n")
    quantize = tmp_path / "keyspot/quantize.py"
    quantize.write_text(quantize.read_text() + "\n\ndef _later():\n    from keyspot import calibration\n")
    assert undeclared(tmp_path) == {"quantize": ["keyspot/calibration.py"]}


def test_what_is_left_out_exists():
    for path in NOT_OUTPUTS:
        assert (REPO / path).exists(), f"{path} in NOT_OUTPUTS is gone"
