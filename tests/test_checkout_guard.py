"""conftest.py fails the suite when a test changes the checkout's `git
status`; its notion of a change, on a scratch repository."""

from __future__ import annotations

import subprocess

from conftest import checkout_state


def test_a_new_ignored_folder_is_a_change_and_python_caches_are_not(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/mlruns/\n__pycache__/\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", ".gitignore"], check=True)
    before = checkout_state(tmp_path)
    (tmp_path / "pkg/__pycache__").mkdir(parents=True)
    (tmp_path / "pkg/__pycache__/m.pyc").write_bytes(b"")
    (tmp_path / "pkg/m.py").write_text("")
    subprocess.run(["git", "-C", str(tmp_path), "add", "pkg/m.py"], check=True)
    tracked = checkout_state(tmp_path)
    assert tracked - before == {"A  pkg/m.py"}   # a staged file is a change; its cache is not
    (tmp_path / "mlruns/1").mkdir(parents=True)
    (tmp_path / "mlruns/1/meta.yaml").write_text("")
    assert checkout_state(tmp_path) - tracked == {"!! mlruns/"}
    (tmp_path / ".gitignore").write_text("")
    assert "AM .gitignore" in checkout_state(tmp_path)   # an edited file is a change


def test_outside_a_checkout_there_is_no_state(tmp_path):
    assert checkout_state(tmp_path) is None
