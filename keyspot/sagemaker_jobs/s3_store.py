"""S3 for the jobs: inputs uploaded once per content, outputs downloaded.

Each input folder becomes one tar (folder_tar.pack) at
`inputs/<sha256>/<name>.tar`, params.yaml and the sourcedir likewise at
`inputs/<sha256>/params.yaml` and `code/<sha256>/sourcedir.tar.gz`. An object
whose key exists already holds those bytes, so it is not uploaded again: a
second run on unchanged data uploads nothing but what changed. (DVC's remote
would deduplicate per file, but would need a `dvc push` before every job and
thousands of objects per dataset; one object per input needs neither.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError

from keyspot.sagemaker_jobs import folder_tar


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


class Store:
    """Uploads and downloads under one bucket and prefix (config.Settings)."""

    def __init__(self, s3, settings, say: Callable[[str], None] = print):
        self.s3, self.settings, self.say = s3, settings, say
        self.bucket = settings.cfg.bucket

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _put(self, key: str, what: str, size: int, upload: Callable[[], None]) -> None:
        if self._exists(key):
            self.say(f"{what}: {_size(size)}, already in s3://{self.bucket}/{key}")
            return
        self.say(f"{what}: {_size(size)}, uploading to s3://{self.bucket}/{key}")
        upload()

    def put_folder(self, folder: Path, name: str, scratch: Path) -> str:
        """Upload `folder` as `<name>.tar` unless S3 has it; return the S3 prefix that holds it."""
        tar = Path(scratch) / f"{name}.tar"
        sha = folder_tar.pack(folder, tar)
        key = self.settings.key("inputs", sha, tar.name)
        self._put(key, f"input {name} ({folder})", tar.stat().st_size,
                  lambda: self.s3.upload_file(str(tar), self.bucket, key))
        tar.unlink()
        return self.settings.uri("inputs", sha) + "/"

    def put_bytes(self, data: bytes, area: str, filename: str, what: str) -> str:
        """Upload `data` as `<area>/<sha256>/<filename>` unless S3 has it; return its URI."""
        sha = hashlib.sha256(data).hexdigest()
        key = self.settings.key(area, sha, filename)
        self._put(key, what, len(data), lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=data))
        return f"s3://{self.bucket}/{key}"

    def download(self, uri: str, dest: Path) -> Path:
        bucket, key = split_uri(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.s3.download_file(bucket, key, str(dest))
        except ClientError as err:
            raise FileNotFoundError(f"{uri}: cannot download it ({err})") from None
        return dest

    def download_prefix(self, uri: str, dest: Path) -> list[Path]:
        """Every object under the prefix `uri`, at its path relative to the prefix under `dest`."""
        bucket, prefix = split_uri(uri.rstrip("/") + "/")
        files = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix):]
                if not relative or relative.endswith("/"):
                    continue
                if relative.startswith("/") or ".." in relative.split("/"):
                    raise ValueError(f"s3://{bucket}/{item['Key']}: not a path inside {uri}")
                files.append(self.download(f"s3://{bucket}/{item['Key']}", dest / relative))
        return files
