"""keyspot.data.archive: hostile tar archives are refused and write nothing outside the target."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from keyspot.data import archive


def make_tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """members: (kind, name, data or link target); kind is file, dir, symlink or hardlink."""
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[kind]
            info.linkname = data if kind != "dir" else ""
            tar.addfile(info)
    return path


GOOD = [("dir", "./yes", b""), ("file", "./yes/a_nohash_0.wav", b"RIFF"),
        ("file", "./validation_list.txt", b"yes/a_nohash_0.wav\n")]


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_extracts_a_good_archive_with_its_stamp(tmp_path):
    src = make_tar(tmp_path / "good.tar.gz",
                   [*GOOD, ("symlink", "./yes/alias.wav", "a_nohash_0.wav")])
    target = tmp_path / "cache" / "good"
    archive.extract(src, target, stamp="abc", progress=False)
    assert (target / "yes" / "a_nohash_0.wav").read_bytes() == b"RIFF"
    assert (target / "yes" / "alias.wav").read_bytes() == b"RIFF"   # a link inside is fine
    assert archive.is_extracted(target, "abc") and not archive.is_extracted(target, "other")
    assert _tree(tmp_path / "cache") == {"good", *(f"good/{p}" for p in _tree(target))}


@pytest.mark.parametrize("member, message", [
    (("file", "../escaped.txt", b"owned"), "climbs out of the target"),
    (("file", "./yes/../../escaped.txt", b"owned"), "climbs out of the target"),
    (("file", "{tmp}/absolute-escape.txt", b"owned"), "absolute path"),
    (("symlink", "./link", "../.."), "symlink to '../..', outside the target"),
    (("symlink", "./yes/link", "/etc/passwd"), "symlink to '/etc/passwd'"),
    (("hardlink", "./yes/hard", "../escaped.txt"), "hard link to '../escaped.txt'"),
])
def test_hostile_member_refuses_the_whole_archive(tmp_path, member, message):
    kind, name, data = member
    member = (kind, name.format(tmp=tmp_path), data)   # an absolute path into this test's folder
    # Good members first, so that the refusal comes after writing has begun.
    src = make_tar(tmp_path / "bad.tar.gz", [*GOOD, member, ("file", "./late.txt", b"x")])
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(archive.UnsafeArchiveError, match=message) as err:
        archive.extract(src, cache / "bad", progress=False)
    assert str(src) in str(err.value) and "\n" not in str(err.value)
    assert list(cache.iterdir()) == []   # no target, no half-extracted temporary folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz", "cache"]


def test_writing_through_an_inside_link_that_leads_out_is_refused(tmp_path):
    # `up` -> `.` is harmless by itself; `up/../x` would leave through it.
    src = make_tar(tmp_path / "bad.tar.gz", [("symlink", "./up", "."), ("file", "./up/../../x", b"x")])
    with pytest.raises(archive.UnsafeArchiveError):
        archive.extract(src, tmp_path / "cache" / "bad", progress=False)
    assert not (tmp_path / "x").exists() and list((tmp_path / "cache").iterdir()) == []


def test_a_failed_extraction_keeps_the_previous_tree(tmp_path):
    target = tmp_path / "cache" / "t"
    archive.extract(make_tar(tmp_path / "good.tar.gz", GOOD), target, stamp="1", progress=False)
    bad = make_tar(tmp_path / "bad.tar.gz", [*GOOD, ("file", "../escaped.txt", b"x")])
    with pytest.raises(archive.UnsafeArchiveError):
        archive.extract(bad, target, stamp="2", progress=False)
    assert archive.is_extracted(target, "1") and (target / "yes" / "a_nohash_0.wav").is_file()


@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_unreadable_archive_is_a_clear_error(tmp_path, damage):
    data = make_tar(tmp_path / "good.tar.gz", [*GOOD, ("file", "./big", bytes(range(256)) * 400)]).read_bytes()
    src = tmp_path / "damaged.tar.gz"
    src.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"<html>not found</html>")
    with pytest.raises(archive.ArchiveError, match="not a readable archive") as err:
        archive.extract(src, tmp_path / "cache" / "t", progress=False)
    assert str(src) in str(err.value) and "delete it" in str(err.value)
    assert list((tmp_path / "cache").iterdir()) == []
