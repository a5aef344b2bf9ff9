"""The folder layout under s3://bucket/prefix: mirrored into a local cache,
then converted exactly as a local folder (keyspot/data/folder.py).

The endpoint, region and credentials come from the usual AWS places
(environment, `~/.aws/config`, a profile, an instance role); boto3 honours
AWS_ENDPOINT_URL for S3-compatible stores. Nothing of it is a param.

The cache is `$KEYSPOT_CACHE`, else `dataset.cache_dir` (default
~/.cache/keyspot), then `s3/<bucket>/<prefix>/`. An object is downloaded
again only when its ETag differs from the one recorded for the cached copy
(or the copy is missing or of another size); objects gone from the bucket
are removed from the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from keyspot import artifacts
from keyspot.data import folder
from keyspot.data.source import Source, Summary
from keyspot.schema import fail

CACHE_ENV = "KEYSPOT_CACHE"
INDEX = ".keyspot-etags.json"   # in the cache folder: relative path -> ETag of the copy
DOWNLOAD_THREADS = 8            # downloads wait on the network, not on the CPU


class S3Error(folder.FolderError):
    """The bucket could not be listed or read."""


@dataclasses.dataclass
class S3Dataset(folder.AudioFiles):
    """The folder layout under s3://bucket/prefix, cached locally."""
    name: str = "s3"
    url: str = ""                       # s3://bucket/prefix
    # The cache: $KEYSPOT_CACHE if set, else this; then s3/<bucket>/<prefix>/.
    cache_dir: str = "~/.cache/keyspot"

    def validate(self, key: str) -> None:
        super().validate(key)
        if not re.fullmatch(r"s3://[^/]+(/.*)?", self.url):
            fail(f"{key}.url", f"{self.url!r} is not s3://bucket or s3://bucket/prefix")


@dataclasses.dataclass(frozen=True)
class Object:
    key: str
    rel: str        # relative to the prefix
    etag: str
    size: int


def parse_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/"); the prefix may be empty."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def cache_folder(dataset) -> Path:
    bucket, prefix = parse_url(dataset.url)
    base = os.environ.get(CACHE_ENV) or dataset.cache_dir or "~/.cache/keyspot"
    return Path(base).expanduser() / "s3" / bucket / prefix


def fetch(dataset, seed: int, out: Path = Path("data/raw"), progress: bool = True) -> Summary:
    """Mirror the bucket prefix into the cache, then convert it into `out`."""
    start = time.perf_counter()
    bucket, prefix = parse_url(dataset.url)
    client = _client()
    objects, skipped = list_objects(client, bucket, prefix, dataset.url)
    cache = cache_folder(dataset)
    downloaded, failed = sync(client, bucket, objects, cache, progress)
    skipped += failed
    failed_paths = {path for path, _ in failed}
    files = [o.rel for o in objects if o.rel not in failed_paths]
    summary = folder.convert(dataset, cache, files, out, dataset.url, skipped, progress, seed)
    summary.origin += f" ({downloaded} downloaded, {len(files) - downloaded} from the cache)"
    summary.seconds = time.perf_counter() - start
    return summary


def list_objects(client, bucket: str, prefix: str, url: str) -> tuple[list[Object], list[tuple[str, str]]]:
    """The objects under the prefix, sorted; hidden ones (a part starting with '.') as skipped."""
    objects, skipped = [], []
    with _errors(url):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                rel = item["Key"][len(prefix):]
                if not rel or rel.endswith("/"):
                    continue    # "folder" marker objects hold no file
                if any(part.startswith(".") for part in rel.split("/")):
                    skipped.append((rel, "hidden file, not downloaded"))
                    continue
                objects.append(Object(item["Key"], rel, item["ETag"], item["Size"]))
    if not objects:
        raise S3Error(f"{url}: no objects under this prefix; upload one folder per class there")
    return sorted(objects, key=lambda o: o.rel), skipped


def sync(client, bucket: str, objects: list[Object], cache: Path,
         progress: bool = True) -> tuple[int, list[tuple[str, str]]]:
    """Download what the cache lacks or holds stale; return (downloaded, failed)."""
    cache.mkdir(parents=True, exist_ok=True)
    index = _read_index(cache / INDEX)
    wanted = {o.rel for o in objects}
    for rel in sorted(set(index) - wanted):       # gone from the bucket
        (cache / rel).unlink(missing_ok=True)
        del index[rel]
    stale = [o for o in objects
             if index.get(o.rel) != o.etag or not (cache / o.rel).is_file()
             or (cache / o.rel).stat().st_size != o.size]
    failed = []
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool, \
            tqdm(total=len(stale), desc="download", unit="file", file=sys.stderr,
                 disable=not progress or not stale) as bar:
        for obj, error in pool.map(lambda o: _download(client, bucket, o, cache), stale):
            bar.update()
            if error is None:
                index[obj.rel] = obj.etag
            else:   # printed with the other skipped files by folder.convert
                index.pop(obj.rel, None)
                failed.append((obj.rel, error))
    artifacts.write_json(cache / INDEX, dict(sorted(index.items())))
    return len(stale) - len(failed), failed


def _download(client, bucket: str, obj: Object, cache: Path) -> tuple[Object, str | None]:
    """One object into the cache via a temporary file; IfMatch makes sure the
    bytes are those of the listed ETag."""
    from botocore.exceptions import BotoCoreError, ClientError

    dest = cache / obj.rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        body = client.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)["Body"]
        with part.open("wb") as f:
            shutil.copyfileobj(body, f, 1 << 20)
        os.replace(part, dest)
    except ClientError as err:
        part.unlink(missing_ok=True)
        return obj, f"download failed ({_code(err)}: {err.response['Error'].get('Message', '')})"
    except (BotoCoreError, OSError) as err:
        part.unlink(missing_ok=True)
        return obj, f"download failed ({err})"
    return obj, None


def _client():
    import boto3

    return boto3.session.Session().client("s3")


def _read_index(path: Path) -> dict[str, str]:
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}     # no index, or a damaged one: everything is fetched again
    return {k: v for k, v in index.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(index, dict) else {}


def _code(err) -> str:
    return str(err.response.get("Error", {}).get("Code", "error"))


@contextlib.contextmanager
def _errors(url: str):
    """Turn boto3's failures while listing into one S3Error that says what to do."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise S3Error(f"{url}: no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID "
                      "and AWS_SECRET_ACCESS_KEY, or run `aws configure`") from None
    except EndpointConnectionError as err:
        raise S3Error(f"{url}: cannot reach the S3 endpoint ({err}); check AWS_ENDPOINT_URL, "
                      "AWS_REGION and the network") from None
    except ClientError as err:
        hints = {"NoSuchBucket": "the bucket does not exist at this endpoint",
                 "AccessDenied": "these credentials may not list the bucket (s3:ListBucket)",
                 "InvalidAccessKeyId": "the access key is not known to this endpoint",
                 "SignatureDoesNotMatch": "the secret key does not match the access key"}
        code = _code(err)
        raise S3Error(f"{url}: {code}: "
                      f"{hints.get(code, err.response['Error'].get('Message', ''))}") from None
    except BotoCoreError as err:
        raise S3Error(f"{url}: {err}") from None


SOURCE = Source("s3", S3Dataset, fetch)
