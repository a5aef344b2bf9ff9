"""Shared fixtures: composed params and the repository root."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# numpy's kernels as every keyspot process pins them (keyspot/cpu.py), before
# this process imports numpy: in-process results then equal the stages'.
os.environ["OPENBLAS_CORETYPE"] = "Nehalem"
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V3 X86_V4"

# TensorFlow's start-up notes would fill every failing test's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The stages pin oneDNN's kernels (keyspot/cpu.py) before their first matrix
# product; oneDNN reads the setting once per process, so in this process it
# must hold before any test runs TensorFlow, or a model trained here after
# another test would differ from the same training in a stage's process.
os.environ["ONEDNN_MAX_CPU_ISA"] = "SSE41"
# Spoken takes are cached for this run alone (and every process it starts):
# a test then never reads what an older version of keyspot left in the
# user's cache, and leaves nothing there.
_SPEECH_CACHE = tempfile.mkdtemp(prefix="keyspot-test-cache-")
os.environ["KEYSPOT_CACHE"] = _SPEECH_CACHE
atexit.register(shutil.rmtree, _SPEECH_CACHE, ignore_errors=True)


# What running Python and pytest leave everywhere, and the PSoC 6 libraries
# that the firmware tests fetch into firmware/mtb_shared as ModusToolbox
# does (a dependency, like .venv, not an output): not changes a test made.
_EXPECTED_LITTER = ("__pycache__/", ".pytest_cache/", ".ruff_cache/", "firmware/mtb_shared/")


def checkout_state(root: Path = REPO) -> set[str] | None:
    """`git status` of the checkout, ignored entries included (a test's
    mlruns/ or dvc_plots/ is ignored, and still a change), less the expected
    litter; None outside a git checkout."""
    result = subprocess.run(["git", "status", "--porcelain=v1", "--ignored"], cwd=root,
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return {line for line in result.stdout.splitlines()
            if not any(line[3:] == litter or line[3:].endswith("/" + litter) for litter in _EXPECTED_LITTER)}


def _is_xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session):
    # The controller looks before any worker starts and after all have
    # finished; a worker would see another's fixtures half-built.
    if not _is_xdist_worker(session.config):
        session.config.stash[_STATE_BEFORE] = checkout_state()


def pytest_sessionfinish(session, exitstatus):
    """The suite fails if the checkout's `git status` changed while it ran:
    tests write only to temporary folders."""
    if _is_xdist_worker(session.config):
        return
    before = session.config.stash.get(_STATE_BEFORE, None)
    after = checkout_state()
    if before is None or after is None or before == after:
        return
    changes = [f"  appeared: {line}" for line in sorted(after - before)]
    changes += [f"  vanished: {line}" for line in sorted(before - after)]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "the test suite changed the checkout's git status:\n" + "\n".join(changes)
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


_STATE_BEFORE = pytest.StashKey[set | None]()

# Session fixtures that are slow to build, or that write one shared folder
# (getlibs.sh fetches into firmware/mtb_shared), must be built by one worker:
# under pytest-xdist every test file that uses one of them runs on the same
# worker (the controller sees test ids only, not fixtures, hence the list).
# tests/test_suite_layout.py checks that the list is complete.
ONE_WORKER_FIXTURES = {"pipeline", "psoc6_libs"}
ONE_WORKER_FILES = {"test_bad_input.py", "test_c_engine.py", "test_firmware_core.py", "test_listen.py",
                    "test_pipeline.py", "test_psoc6_firmware.py", "test_remote.py", "test_views_in_browser.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Each test file on one worker, so that its module fixtures are built
    once, and ONE_WORKER_FILES all on the same one. (xdist's own
    `--dist loadgroup` reads groups from test ids in a way pytest 9 no
    longer supports.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndSharedFixtures(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return "shared-fixtures" if Path(file).name in ONE_WORKER_FILES else file

    return FilesAndSharedFixtures(config, log)


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
def tiny_data(tmp_path_factory, smoke_params):
    """tests/tiny_dataset.py's clips in data/raw layout (`raw/`) and their
    features (`features/`), for stage-level tests of train and its backends."""
    import tiny_dataset

    from keyspot.features import extract

    root = tmp_path_factory.mktemp("tiny_data")
    extract.run(smoke_params, tiny_dataset.make(root / "raw"), root / "features")
    return root


@pytest.fixture(scope="module")
def moto_server():
    """moto's server (S3, SageMaker, CloudWatch Logs, ...) on a free loopback port; its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


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


@pytest.fixture(scope="session")
def psoc6_libs() -> Path:
    """The libraries firmware/psoc6/deps pins, fetched (or reused) into
    firmware/mtb_shared by getlibs.sh, from GitHub or from the mirror that
    git's url.<base>.insteadOf points at (scripts/git_mirror.sh). Where
    neither can be reached the firmware tests skip, unless
    KEYSPOT_REQUIRE_FIRMWARE_LIBS=1 (CI) makes that a failure."""
    import shutil
    import subprocess

    psoc6 = REPO / "firmware/psoc6"
    missing = [t for t in ("git", "make", "arm-none-eabi-g++", "qemu-system-arm") if shutil.which(t) is None]
    result = None if missing else subprocess.run(["./getlibs.sh"], cwd=psoc6, capture_output=True, text=True)
    if missing or result.returncode != 0:
        why = (f"needs {', '.join(missing)} (scripts/setup.sh installs them)" if missing else
               "firmware/psoc6/getlibs.sh could not fetch the pinned libraries (no GitHub; "
               "`source scripts/git_mirror.sh ../shared/vendor/git` points git at a mirror): "
               + result.stderr[-1000:])
        if os.environ.get("KEYSPOT_REQUIRE_FIRMWARE_LIBS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return REPO / "firmware/mtb_shared"
