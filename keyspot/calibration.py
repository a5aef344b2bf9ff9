"""reports/calibration.json: the recognizer's parameters as the calibrate
stage chose them (keyspot/calibrate.py), read back by c-export."""

from __future__ import annotations

import json
from pathlib import Path

from keyspot.errors import UserError
from keyspot.schema import Recognizer

FIELDS = ("average_window_ms", "detection_threshold", "suppression_ms", "minimum_count")


class CalibrationError(UserError, ValueError):
    """reports/calibration.json is missing or not what calibrate writes."""


def load_recognizer(path: Path | str) -> Recognizer:
    """export.recognizer as calibrate chose it (reports/calibration.json)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())["recognizer"]
        return Recognizer(**{k: int(values[k]) for k in FIELDS})
    except FileNotFoundError:
        raise CalibrationError(f"{path}: missing; run `dvc repro calibrate`") from None
    except (ValueError, KeyError, TypeError) as err:
        raise CalibrationError(f"{path}: not calibrate's output ({err}); rerun `dvc repro calibrate`") from None

