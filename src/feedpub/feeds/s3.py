"""The output folder mirrored to S3-compatible object storage (``[output] url``): boto3,
wrapped; the one module of ours that imports it (the ``s3`` extra).

The build writes the folder as always (``[output] dir``, each file atomically); then
:func:`publish` uploads what changed:

- **Only changed objects**: one ``ListObjectsV2`` pass gives every object's ETag, which for
  a single-part ``PutObject`` (all we do) without SSE-KMS/SSE-C is the MD5 of its bytes; a
  file whose MD5 matches is not uploaded. Local MD5s are cached by (size, mtime) in this
  process, and a pass whose folder did not change since the last one does nothing at all.
  (A bucket with SSE-KMS gives other ETags: then every file is uploaded each time. Correct,
  only wasteful.)
- **Never a half-written object**: a ``PutObject`` becomes visible whole or not at all. The
  order makes the set consistent too: feed files and archive pages first, each folder's
  ``index.html`` and ``feeds.opml`` (what links to the rest) last, deletions after that.
- **Headers**: ``Content-Type`` by name (``feedpub.mediatypes``, as ``feedpub serve``
  sends), ``Cache-Control`` from ``[output.s3]`` (archives and edition pages longer), and
  for text files of ``precompress_min`` bytes and more a precompressed copy ``NAME.gz``
  with ``Content-Encoding: gzip`` and the original's type (written deterministically, so
  an unchanged file gives an unchanged copy).
- **Deletions** only of paths a build removed (a beat dropped from the config): never "what
  this host lacks", since instances on other hosts write to the same bucket (edition pages
  are written by whichever instance finished the edition).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedpub.config import Config
from feedpub.config_s3 import split_s3_url
from feedpub.errors import ConfigError, FeedpubError
from feedpub.mediatypes import compressible, content_type

log = logging.getLogger("feedpub.feeds.s3")

LAST = ("index.html", "feeds.opml")  # what links to the rest: uploaded after it


class UploadError(FeedpubError):
    """The bucket refused or could not be reached."""


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)  # object keys, relative to the prefix
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    skipped: bool = False  # nothing changed locally since the last pass


@dataclass(frozen=True)
class _Local:
    size: int
    mtime_ns: int
    md5: str
    gz_md5: str | None  # of the precompressed copy, when one is made


_cache: dict[Path, _Local] = {}  # local file -> its hashes, by (size, mtime)
_last_pass: dict[str, frozenset[tuple[str, int, int]]] = {}  # url -> folder inventory
_mutex = threading.Lock()


def client(config: Config) -> Any:
    """A boto3 S3 client for ``[output.s3]`` (ConfigError when boto3 is missing)."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:
        raise ConfigError(
            "[output] url is an s3:// URL but boto3 is not installed: pip install 'feedpub[s3]'",
            key="output.url",
        ) from None
    s3 = config.output.s3
    kwargs: dict[str, Any] = {}
    for env, arg in ((s3.access_key_env, "aws_access_key_id"),
                     (s3.secret_key_env, "aws_secret_access_key")):  # fmt: skip
        if env:
            value = os.environ.get(env)
            if not value:
                raise ConfigError(f"the environment variable {env} is not set", key="output.s3")
            kwargs[arg] = value
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}),
        **kwargs,
    )


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # deterministic


def _wants_copy(config: Config, rel: str, size: int) -> bool:
    s3 = config.output.s3
    return s3.precompress and size >= s3.precompress_min and compressible(content_type(rel))


def _local(config: Config, path: Path, rel: str, st: os.stat_result) -> _Local:
    got = _cache.get(path)
    if got is not None and (got.size, got.mtime_ns) == (st.st_size, st.st_mtime_ns):
        return got
    data = path.read_bytes()
    gz = hashlib.md5(_gzip(data)).hexdigest() if _wants_copy(config, rel, len(data)) else None
    got = _Local(st.st_size, st.st_mtime_ns, hashlib.md5(data).hexdigest(), gz)
    _cache[path] = got
    return got


def _walk(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):  # the writers' temp files, our own state
                continue
            path = Path(dirpath) / name
            yield path.relative_to(root).as_posix(), path, path.stat()


def _order(rel: str) -> tuple[int, int, str]:
    """Upload order: linked-to files first, deepest first; index pages and OPML last."""
    last = rel.rsplit("/", 1)[-1] in LAST
    return (1 if last else 0, -rel.count("/"), rel)


def _remote(cl: Any, bucket: str, prefix: str) -> dict[str, str]:
    """Object key (relative to the prefix) -> ETag without quotes."""
    out: dict[str, str] = {}
    for page in cl.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = obj["ETag"].strip('"')
    return out


def _cache_control(config: Config, rel: str) -> str:
    s3 = config.output.s3
    archived = "/archive/" in f"/{rel}" or (
        rel.startswith("newsletters/") and not rel.endswith(("index.html", "atom.xml"))
    )
    return s3.archive_cache_control if archived else s3.cache_control


def publish(
    config: Config,
    *,
    removed: Iterable[str] = (),
    only: Iterable[str] | None = None,
    cl: Any = None,
) -> UploadReport | None:
    """Bring the bucket of ``[output] url`` up to date with the output folder (see the
    module docstring). ``only``: these paths (relative to the folder) and nothing else;
    ``removed``: paths a build deleted. None when no ``[output] url`` is set."""
    url = config.output.url
    if url is None:
        return None
    bucket, prefix = split_s3_url(url)
    root = config.output_dir
    report = UploadReport()
    gone = sorted(set(removed))
    with _mutex:
        if only is not None:
            wanted = {r for r in only if (root / r).is_file()}
            files = [(r, root / r, (root / r).stat()) for r in sorted(wanted)]
        else:
            files = list(_walk(root)) if root.is_dir() else []
            inventory = frozenset((r, st.st_size, st.st_mtime_ns) for r, _p, st in files)
            if not gone and _last_pass.get(url) == inventory:
                report.skipped = True
                return report
        cl = cl or client(config)
        try:
            remote = _remote(cl, bucket, prefix)
            for rel, path, st in sorted(files, key=lambda f: _order(f[0])):
                loc = _local(config, path, rel, st)
                ctype = content_type(rel.rsplit("/", 1)[-1])
                cache = _cache_control(config, rel)
                data: bytes | None = None
                if loc.gz_md5 is not None and remote.get(rel + ".gz") != loc.gz_md5:
                    data = path.read_bytes()
                    _put(cl, bucket, prefix + rel + ".gz", _gzip(data), ctype, cache, "gzip")
                    report.uploaded.append(rel + ".gz")
                if remote.get(rel) != loc.md5:
                    data = data if data is not None else path.read_bytes()
                    _put(cl, bucket, prefix + rel, data, ctype, cache, None)
                    report.uploaded.append(rel)
                else:
                    report.unchanged += 1
            for rel in gone:
                keys = [k for k in (rel, rel + ".gz") if k in remote]
                if keys:
                    cl.delete_objects(
                        Bucket=bucket,
                        Delete={"Objects": [{"Key": prefix + k} for k in keys], "Quiet": True},
                    )
                    report.deleted.extend(keys)
        except Exception as e:
            if type(e).__module__.startswith(("botocore", "boto3")):
                raise UploadError(f"uploading the feeds to {url} failed: {e}") from e
            raise
        if only is None:
            _last_pass[url] = inventory
    if report.uploaded or report.deleted:
        log.info(
            "feeds uploaded",
            extra={
                "url": url,
                "uploaded": len(report.uploaded),
                "unchanged": report.unchanged,
                "deleted": len(report.deleted),
            },
        )
    return report


def _put(
    cl: Any, bucket: str, key: str, data: bytes, ctype: str, cache: str, encoding: str | None
) -> None:
    extra = {"ContentEncoding": encoding} if encoding else {}
    cl.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType=ctype,
        CacheControl=cache,
        ContentMD5=_b64md5(data),  # the service rejects a body damaged on the way
        **extra,
    )


def _b64md5(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(data).digest()).decode()
