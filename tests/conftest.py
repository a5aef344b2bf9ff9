"""Shared fixtures: composed params and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# TensorFlow's start-up notes would fill every failing test's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smoke_dict() -> dict:
    from keyspot.compose import compose

    return compose(REPO / "conf", ["experiment=smoke"])


@pytest.fixture(scope="session")
def smoke_params(smoke_dict):
    from keyspot.params import from_dict

    return from_dict(smoke_dict)
