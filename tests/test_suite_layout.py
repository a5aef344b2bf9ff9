"""How the suite is spread over pytest-xdist's workers (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ONE_WORKER_FILES, ONE_WORKER_FIXTURES


def test_every_file_on_a_shared_session_fixture_runs_on_one_worker(request):
    """A test file that uses the smoke pipeline or the PSoC 6 libraries, and
    is missing from ONE_WORKER_FILES, would make a second worker build them
    again: minutes more, and two getlibs.sh writing one folder."""
    collected = {item.path.name for item in request.session.items}
    every_file = {path.name for path in Path(__file__).parent.glob("test_*.py")}
    if collected != every_file:
        pytest.skip("looks at the whole suite's fixtures: run without selecting files or tests")
    users = {item.path.name for item in request.session.items if ONE_WORKER_FIXTURES & set(item.fixturenames)}
    assert not users - ONE_WORKER_FILES, f"add {', '.join(sorted(users - ONE_WORKER_FILES))} to ONE_WORKER_FILES"
    assert not ONE_WORKER_FILES - users, f"no longer on a shared fixture: {sorted(ONE_WORKER_FILES - users)}"
