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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback (SQLite store, proxied artifacts)."""
    from mlflow_server import start

    with start(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, repo, smoke_dict, mlflow_server):
    """One `dvc repro` of the smoke config in a scratch git repo, shared by
    every test that needs it; it logs to the `mlflow server` fixture."""
    from scratch_repo import build

    return build(repo, tmp_path_factory.mktemp("pipeline") / "repo", smoke_dict, tracking_uri=mlflow_server)
