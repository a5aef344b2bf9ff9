"""The model's worst mistakes on a test split, to read, hear or copy.

evaluate writes reports/eval/predictions.csv (and test_engine_predictions.csv):
each clip's path, speaker, label and each model's top label with its
probability. `keyspot errors` lists the clips a model got wrong, the most
confident mistakes first, and can play them (sox's `play`) or copy them into
a folder, named by rank, label and guess, to listen to elsewhere.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
import subprocess
from pathlib import Path

from keyspot.errors import UserError

EVAL_DIR = Path("reports/eval")


class MistakesError(UserError, ValueError):
    """The predictions cannot be read, or the clips cannot be played or copied."""


@dataclasses.dataclass(frozen=True)
class Mistake:
    path: str      # relative to the dataset folder (data/raw)
    speaker: str
    actual: str
    predicted: str
    probability: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def predictions_file(split: str, eval_dir: Path = EVAL_DIR) -> Path:
    return Path(eval_dir) / ("predictions.csv" if split == "test" else f"{split}_predictions.csv")


def worst(path: Path, int8: bool = False, label: str | None = None) -> list[Mistake]:
    """The wrong predictions of the float (or int8) model in a predictions
    file, the most confident first; `label`: only clips of that label."""
    prefix = "int8_" if int8 else ""
    want = ("path", "speaker", "actual", f"{prefix}predicted", f"{prefix}probability")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in want if c not in (reader.fieldnames or [])]
            if missing:
                raise MistakesError(f"{path}: no column {', '.join(missing)}; rerun `dvc repro evaluate`")
            rows = list(reader)
    except FileNotFoundError:
        raise MistakesError(f"{path}: missing; run `dvc repro evaluate` (or `dvc pull`) first") from None
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            probability = float(row[f"{prefix}probability"])
        except ValueError:
            raise MistakesError(f"{path}:{line}: probability {row[f'{prefix}probability']!r} is not a "
                                "number; rerun `dvc repro evaluate`") from None
        if row["actual"] != row[f"{prefix}predicted"] and label in (None, row["actual"]):
            out.append(Mistake(row["path"], row["speaker"], row["actual"], row[f"{prefix}predicted"], probability))
    # Most confident first; the path breaks ties so that the order is stable.
    return sorted(out, key=lambda m: (-m.probability, m.path))


def copy(mistakes: list[Mistake], raw_dir: Path, out_dir: Path) -> list[Path]:
    """Copy the clips into out_dir as NNN_actual_as_predicted_name.wav; returns the copies."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copies = []
    for rank, m in enumerate(mistakes, start=1):
        source = _clip(raw_dir, m)
        target = out_dir / f"{rank:03d}_{m.actual}_as_{m.predicted}_{Path(m.path).name}"
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


def play(mistakes: list[Mistake], raw_dir: Path, player: str = "play") -> None:
    """Play each clip in turn with sox's `play` (which scripts/setup.sh installs)."""
    if shutil.which(player) is None:
        raise MistakesError(f"no `{player}` on PATH (Debian package sox); use --copy DIR to copy the clips instead")
    for m in mistakes:
        result = subprocess.run([player, "-q", str(_clip(raw_dir, m))], capture_output=True, text=True)
        if result.returncode != 0:
            why = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise MistakesError(f"{player} could not play {m.path} ({why}); no sound device? "
                                "use --copy DIR")


def _clip(raw_dir: Path, m: Mistake) -> Path:
    source = Path(raw_dir) / m.path
    if not source.is_file():
        raise MistakesError(f"{source}: missing; run `dvc pull` or `dvc repro fetch` to bring data/raw back")
    return source
