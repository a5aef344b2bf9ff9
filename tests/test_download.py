"""keyspot.data.download against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import os

import pytest
from loopback_http import LoopbackServer, closed_port_url

from keyspot.data import download

PAYLOAD = os.urandom(3 * download.CHUNK + 12345)   # several chunks, odd length
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with LoopbackServer({"/data/file.bin": PAYLOAD}) as s:
        yield s


def test_downloads_verifies_and_reuses_the_cached_file(server, tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    assert download.download(f"{server.url}/data/file.bin", dest, SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("file.bin.part").exists()
    download.download(f"{server.url}/data/file.bin", dest, SHA.upper(), progress=False)
    assert server.requests == [("/data/file.bin", None)]   # the second call asked nothing


def test_a_cut_download_resumes_from_the_part_file(server, tmp_path):
    server.cut_once.add("/data/file.bin")
    dest = tmp_path / "file.bin"
    download.download(f"{server.url}/data/file.bin", dest, SHA, progress=False)
    half = len(PAYLOAD) // 2
    assert server.requests == [("/data/file.bin", None), ("/data/file.bin", f"bytes={half}-")]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == SHA


def test_a_part_file_left_by_an_earlier_run_is_resumed(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.with_name("file.bin.part").write_bytes(PAYLOAD[:1000])
    download.download(f"{server.url}/data/file.bin", dest, SHA, progress=False)
    assert server.requests == [("/data/file.bin", "bytes=1000-")]
    assert dest.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_gives_a_fresh_whole_file(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "file.bin"
    dest.with_name("file.bin.part").write_bytes(b"x" * 1000)
    download.download(f"{server.url}/data/file.bin", dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_a_complete_part_file_is_verified_not_fetched_again(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.with_name("file.bin.part").write_bytes(PAYLOAD)
    download.download(f"{server.url}/data/file.bin", dest, SHA, progress=False)
    assert server.requests == [("/data/file.bin", f"bytes={len(PAYLOAD)}-")]   # answered 416
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_nothing_is_kept(server, tmp_path):
    dest = tmp_path / "file.bin"
    url = f"{server.url}/data/file.bin"
    with pytest.raises(download.ChecksumError) as err:
        download.download(url, dest, "0" * 64, progress=False)
    message = str(err.value)
    assert url in message and SHA in message and "0" * 64 in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_cached_file_is_fetched_again(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD[:-1] + b"!")
    download.download(f"{server.url}/data/file.bin", dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(server.requests) == 1


def test_repeated_cuts_give_up_keeping_the_bytes_for_the_next_run(server, tmp_path):
    dest = tmp_path / "file.bin"
    url = f"{server.url}/data/file.bin"
    server.cut_once.add("/data/file.bin")
    with pytest.raises(download.DownloadError, match=r"dropped 1 times .* next run resumes") as err:
        download.download(url, dest, SHA, attempts=1, progress=False)
    assert url in str(err.value)
    part = dest.with_name("file.bin.part")
    assert part.read_bytes() == PAYLOAD[:len(PAYLOAD) // 2] and not dest.exists()
    download.download(url, dest, SHA, progress=False)   # the next run
    assert server.requests[-1] == ("/data/file.bin", f"bytes={len(PAYLOAD) // 2}-")
    assert dest.read_bytes() == PAYLOAD


def test_missing_file_names_the_url_and_status(server, tmp_path):
    url = f"{server.url}/data/nope.bin"
    with pytest.raises(download.DownloadError, match="answered 404") as err:
        download.download(url, tmp_path / "nope.bin", SHA, progress=False)
    assert url in str(err.value) and "dataset.base_url" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_names_the_url(tmp_path):
    url = f"{closed_port_url()}/file.bin"
    with pytest.raises(download.DownloadError, match="cannot connect") as err:
        download.download(url, tmp_path / "file.bin", SHA, progress=False)
    assert url in str(err.value) and "\n" not in str(err.value)
