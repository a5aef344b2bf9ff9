"""DVC's S3 remote: push, pull into a fresh clone, resume an interrupted push.

The remote is moto's S3 server on loopback. The repo is the smoke pipeline
that test_pipeline.py also uses (one `dvc repro` for both): this module moves
its outputs around and reruns no stage, except c-export (which DVC keeps no run
cache for) in one clone.
"""

from __future__ import annotations

import configparser
import re
import socket
import threading
from pathlib import Path

import pytest
import yaml
from scratch_repo import GIT, output_hashes, run

REPO = Path(__file__).resolve().parents[1]
BUCKET, PREFIX = "keyspot-artifacts", "dvc"


def test_committed_remote_is_s3_without_endpoint_or_credentials():
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc/config")
    assert config["core"]["remote"] == "storage"
    storage = config["'remote \"storage\"'"]   # DVC writes the section name quoted
    assert storage["url"] == f"s3://{BUCKET}/{PREFIX}"
    machine_specific = {"endpointurl", "region", "profile", "access_key_id", "secret_access_key",
                        "session_token", "credentialpath", "configpath"}
    assert not machine_specific & set(storage), "these belong in .dvc/config.local or the environment"
    assert config["hydra"]["enabled"] == "true"


class CuttableProxy:
    """A loopback TCP proxy in front of `port` that cuts itself after `budget` request bytes.

    Cutting resets every open connection and stops listening, so the client
    then sees refused connections: the server has gone away in the middle of
    a transfer. `restore()` listens again on the same port with no budget.
    """

    def __init__(self, port: int):
        self.target = ("127.0.0.1", port)
        self.budget: int | None = None
        self.forwarded = 0
        self.cut_count = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.restore()

    def restore(self) -> None:
        with self._lock:
            self.budget, self.forwarded = None, 0
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            listener.settimeout(0.1)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is None:
                return
            self._listener.close()
            self._listener = None
            self.cut_count += 1
            for sock in self._open:
                _close(sock)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if listener is not self._listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self._lock:
                if listener is not self._listener:
                    _close(client), _close(upstream)
                    return
                self._open |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, request: bool) -> None:
        try:
            while data := src.recv(65536):
                spent = False
                if request:
                    with self._lock:
                        if self.budget is not None:
                            data = data[:max(self.budget - self.forwarded, 0)]
                            spent = self.forwarded + len(data) >= self.budget
                        self.forwarded += len(data)
                dst.sendall(data)
                if spent:
                    self.cut()
                    return
        except OSError:
            pass
        with self._lock:
            self._open -= {src, dst}
        _close(src), _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on loopback, and a boto3 client that talks to it directly."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    yield {"endpoint": endpoint, "port": port, "client": client}
    server.stop()


@pytest.fixture(scope="module")
def env(pipeline):
    """The pipeline's environment with fake credentials and no trace of a real AWS setup."""
    env = {k: v for k, v in pipeline["env"].items() if not k.startswith("AWS_")}
    missing = str(pipeline["root"].parent / "no-aws-config")
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=missing,
               AWS_SHARED_CREDENTIALS_FILE=missing, AWS_EC2_METADATA_DISABLED="true")
    return env


@pytest.fixture(scope="module")
def committed(pipeline, env):
    """The scratch repo at its committed state; its `.dvc/config.local` is removed afterwards."""
    root = pipeline["root"]
    run([*GIT, "reset", "-q", "--hard", "HEAD"], root, env)
    run(["dvc", "checkout", "-q", "--force"], root, env)
    assert run(["git", "status", "--porcelain"], root, env).stdout == ""
    yield root
    (root / ".dvc/config.local").unlink(missing_ok=True)


def _objects(client, bucket: str, prefix: str) -> set[str]:
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys |= {obj["Key"] for obj in page.get("Contents", [])}
    return keys


def _run_cache(root: Path) -> set[str]:
    runs = root / ".dvc/cache/runs"
    return {p.relative_to(runs).as_posix() for p in runs.rglob("*") if p.is_file()}


def _clone(src: Path, dest: Path, env: dict, bucket: str, endpoint: str) -> Path:
    """A plain `git clone` whose default remote is pointed, locally, at `bucket` on `endpoint`."""
    run(["git", "clone", "-q", str(src), str(dest)], dest.parent, env)
    if bucket != BUCKET:
        run(["dvc", "remote", "modify", "--local", "storage", "url", f"s3://{bucket}/{PREFIX}"], dest, env)
    run(["dvc", "remote", "modify", "--local", "storage", "endpointurl", endpoint], dest, env)
    return dest


@pytest.fixture(scope="module")
def pushed(committed, env, s3):
    """`dvc push --run-cache` of the whole pipeline into the `storage` remote."""
    s3["client"].create_bucket(Bucket=BUCKET)
    run(["dvc", "remote", "modify", "--local", "storage", "endpointurl", s3["endpoint"]], committed, env)
    run(["dvc", "push", "--run-cache"], committed, env)
    return {"root": committed}


@pytest.mark.slow
def test_push_uploads_every_output_and_the_run_cache(pushed, env, s3):
    root = pushed["root"]
    status = run(["dvc", "status", "--cloud"], root, env).stdout
    assert "Cache and remote 'storage' are in sync" in status, status
    keys = _objects(s3["client"], BUCKET, f"{PREFIX}/")
    runs = {k.removeprefix(f"{PREFIX}/runs/") for k in keys if k.startswith(f"{PREFIX}/runs/")}
    assert runs and runs == _run_cache(root)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    outs = [out for stage in lock["stages"].values() for out in stage.get("outs", [])]
    for out in outs:
        if out["path"].startswith("firmware/"):   # cache: false, lives in git
            continue
        md5 = out["md5"]
        assert f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" in keys, f"{out['path']} was not pushed"


@pytest.mark.slow
def test_fresh_clone_pulls_everything_and_has_nothing_to_run(pushed, env, s3, tmp_path):
    root = pushed["root"]
    clone = _clone(root, tmp_path / "clone", env, BUCKET, s3["endpoint"])
    run(["dvc", "pull", "--run-cache"], clone, env)
    assert _run_cache(clone) == _run_cache(root)
    repro = run(["dvc", "repro"], clone, env).stdout
    assert "Running stage" not in repro, repro
    status = run(["dvc", "status"], clone, env).stdout
    assert "Data and pipelines are up to date" in status, status
    assert run(["git", "status", "--porcelain"], clone, env).stdout == ""
    assert output_hashes(clone) == output_hashes(root)


@pytest.mark.slow
def test_run_cache_rebuilds_a_lost_lock_without_running_a_stage(pushed, env, s3, tmp_path):
    root = pushed["root"]
    clone = _clone(root, tmp_path / "clone", env, BUCKET, s3["endpoint"])
    (clone / "dvc.lock").unlink()
    # Without a lock there are no output hashes to pull: fetch the recorded runs, and
    # `repro --pull` downloads the outputs of each run it restores (as repro.yml does).
    run(["dvc", "fetch", "--run-cache"], clone, env)
    repro = run(["dvc", "repro", "--pull"], clone, env).stdout
    # DVC records no runs for stages with persistent or `cache: false` outputs:
    # train and c-export run again, and must write the same bytes as before
    # (checked below); every other stage is restored from its recorded run.
    rerun = {"train", "c-export"}
    assert set(re.findall(r"Running stage '([^']+)'", repro)) <= rerun, repro
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    for stage in set(lock["stages"]) - rerun:
        assert f"Stage '{stage}' is cached - skipping run" in repro, repro
    assert run(["git", "status", "--porcelain"], clone, env).stdout == "", "dvc.lock differs"
    assert output_hashes(clone) == output_hashes(root)


@pytest.mark.slow
def test_interrupted_push_fails_then_resumes(committed, env, s3, tmp_path):
    root, client = committed, s3["client"]
    bucket = "keyspot-interrupted"
    client.create_bucket(Bucket=bucket)
    proxy = CuttableProxy(s3["port"])
    run(["dvc", "remote", "add", "--local", "-f", "flaky", f"s3://{bucket}/{PREFIX}"], root, env)
    run(["dvc", "remote", "modify", "--local", "flaky", "endpointurl", f"http://127.0.0.1:{proxy.port}"],
        root, env)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    data_bytes = sum(out["size"] for stage in lock["stages"].values() for out in stage.get("outs", [])
                     if not out["path"].startswith("firmware/"))
    # No retries: with the proxy gone, every request fails at once instead of backing off.
    quick = {**env, "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}

    # Half the data gets through, then the connection drops. Two uploads at a time, so
    # that by then whole objects have landed, the rest have not: the cut is mid-push.
    proxy.budget = data_bytes // 2
    first = run(["dvc", "push", "-r", "flaky", "--jobs", "2"], root, quick, check=False)
    assert proxy.cut_count == 1, f"the push ended before the proxy cut it:\n{first.stdout}{first.stderr}"
    assert first.returncode != 0, first.stdout
    assert "Could not connect to the endpoint URL" in first.stderr, first.stderr
    arrived = _objects(client, bucket, f"{PREFIX}/")
    print(f"cut after {proxy.forwarded} of {data_bytes} data bytes; {len(arrived)} objects arrived")

    proxy.restore()
    second = run(["dvc", "push", "-r", "flaky"], root, quick)
    complete = _objects(client, bucket, f"{PREFIX}/")
    assert 0 < len(arrived) < len(complete), (len(arrived), len(complete))
    assert f"{len(complete) - len(arrived)} files pushed" in second.stdout, second.stdout
    status = run(["dvc", "status", "--cloud", "-r", "flaky"], root, env).stdout
    assert "in sync" in status, status

    clone = _clone(root, tmp_path / "clone", env, bucket, s3["endpoint"])
    run(["dvc", "pull"], clone, env)
    assert output_hashes(clone) == output_hashes(root)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone, env).stdout
    proxy.cut()
