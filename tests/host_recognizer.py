"""The host build of firmware/core/host/keyspot_recognize.c, which the
recognizer tests (test_recognizer.py, test_firmware_core.py) feed score
streams to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "firmware" / "core"


def build_keyspot_recognize(build: Path) -> Path:
    """Build keyspot_recognize in `build` and return its path; skip the test without gcc and make.

    It is built against an empty folder: no generated recognizer_config.h, so
    its defaults are the program's own and every parameter comes from the test.
    """
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("needs host gcc and make")
    (build / "no-generated").mkdir()
    result = subprocess.run(["make", "-s", "-C", str(CORE), f"BUILD={build}", f"GENERATED={build / 'no-generated'}",
                             f"{build}/keyspot_recognize"], capture_output=True)
    assert result.returncode == 0, (result.stdout + result.stderr).decode("utf-8", "replace")
    return build / "keyspot_recognize"
