"""The feeds output folder served as static files, with conditional GET.

Feed readers ask publishers to honour conditional requests (FIELD-NOTES "What feed
readers' maintainers ask"): every file gets a strong ``ETag`` (a hash of its bytes, so
a ``build --force`` that rewrites the same bytes keeps it) and ``Last-Modified``; a
matching ``If-None-Match`` or ``If-Modified-Since`` gets ``304 Not Modified``
(RFC 9110 §13.1.1, §13.1.3, §13.2.2, §15.4.5).

Paths never leave the folder: a request path is split into segments and refused when a
segment is ``..``, ``.``, hidden (``.name``, which also hides the writers' temp files)
or holds a NUL or backslash; the *final* file (symlinks followed, after a folder's
``index.html`` is appended) must still lie inside the folder, and the file opened must be
that file (checked on the open descriptor).

gzip: text files (feeds, pages, OPML) of 1 KB and more are sent gzip-compressed to
clients that accept it (``Accept-Encoding``), compressed once per file version and kept
in a bounded cache; they carry ``Vary: Accept-Encoding`` and an ETag of their own
(``"<hash>-gzip"``), and either ETag validates (304) the same version.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from feedpub.mediatypes import compressible as compressible
from feedpub.mediatypes import content_type as content_type

CHUNK = 64 * 1024
GZIP_MIN = 1024  # smaller files gain nothing from compression
GZIP_MAX = 16 * 1024 * 1024  # larger ones are sent as they are (not held in memory)
GZIP_CACHE = 64 * 1024 * 1024  # bytes of compressed files kept


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (RFC 9110 §12.5.3: ``gzip`` or ``*`` with a
    non-zero q-value; ``x-gzip`` is the same coding)."""
    if not accept_encoding:
        return False
    allowed: dict[str, bool] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        allowed[name.strip().lower()] = q > 0
    for coding in ("gzip", "x-gzip"):
        if coding in allowed:
            return allowed[coding]
    return allowed.get("*", False)


def gzip_etag(etag: str) -> str:
    return etag[:-1] + '-gzip"'


def safe_segments(rel: str) -> list[str] | None:
    """The path segments of ``rel`` (already percent-decoded), or None when any of them
    could step outside the folder or name a hidden file. Empty segments are dropped
    (``//etc/passwd`` is ``etc/passwd`` under the folder)."""
    out = []
    for seg in rel.split("/"):
        if not seg:
            continue
        if seg.startswith(".") or "\x00" in seg or "\\" in seg or ":" in seg:
            return None
        out.append(seg)
    return out


def not_modified(
    method: str,
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    mtime: datetime,
) -> bool:
    """Whether a GET/HEAD gets 304 (RFC 9110 §13.2.2: If-None-Match, when present,
    decides alone, with weak comparison; else If-Modified-Since, to the second)."""
    if method not in ("GET", "HEAD"):
        return False
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        ours = {etag.removeprefix("W/"), gzip_etag(etag.removeprefix("W/"))}  # same version
        return any(tag.strip().removeprefix("W/") in ours for tag in if_none_match.split(","))
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False  # §13.1.3: an invalid date is ignored
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return mtime.replace(microsecond=0) <= since
    return False


@dataclass(frozen=True, slots=True)
class StaticFile:
    """An open file ready to send (the caller closes it, or iterates ``chunks``)."""

    path: Path
    file: BinaryIO
    size: int
    etag: str
    mtime: datetime
    content_type: str

    @property
    def last_modified(self) -> str:
        return format_datetime(self.mtime.replace(microsecond=0), usegmt=True)

    def chunks(self) -> Iterator[bytes]:
        try:
            while block := self.file.read(CHUNK):
                yield block
        finally:
            self.file.close()


class StaticFiles:
    """Finds files under ``root`` and gives them strong ETags (hashes cached per inode,
    size and mtime, so a file is hashed once per version)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._hashes: dict[tuple[int, int, int, int], str] = {}
        self._gzipped: dict[str, bytes] = {}  # ETag -> compressed bytes (insertion = age)
        self._gzipped_size = 0
        self._lock = threading.Lock()

    def _real_root(self) -> Path | None:
        try:
            return self.root.resolve(strict=True)
        except OSError:
            return None

    def open(self, rel: str) -> StaticFile | str | None:
        """The file for a path under the site root: a StaticFile, a redirect target
        (``str``: the folder's path under the root, with a slash added) or None (not
        found / refused)."""
        segs = safe_segments(rel)
        root = self._real_root()
        if segs is None or root is None:
            return None
        path = root.joinpath(*segs)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if real != root and root not in real.parents:
            return None  # a symlink pointing outside the folder
        if real.is_dir():
            if segs and not rel.endswith("/"):
                return "/".join(segs) + "/"  # normalized: never "//host/" (open redirect)
            try:  # the index file may itself be a symlink: confine its final target too
                real = (real / "index.html").resolve(strict=True)
            except (OSError, RuntimeError):
                return None
            if root not in real.parents:
                return None
        try:
            f = open(real, "rb")  # noqa: SIM115 - closed by the caller / chunks()
        except OSError:
            return None
        try:
            st = os.fstat(f.fileno())
            # The file opened must be the one checked (not a symlink swapped in between).
            on_disk = os.stat(real, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
                on_disk.st_dev,
                on_disk.st_ino,
            ):
                f.close()
                return None
            etag = self._etag(f, st)
        except OSError:
            f.close()
            return None
        return StaticFile(
            path=real,
            file=f,
            size=st.st_size,
            etag=etag,
            mtime=datetime.fromtimestamp(int(st.st_mtime), UTC),
            content_type=content_type(real.name),
        )

    def gzipped(self, f: StaticFile) -> bytes | None:
        """The file's bytes gzip-compressed (cached per version), or None when it is too
        small, too big or not text. Reads the open file and rewinds it."""
        if not (GZIP_MIN <= f.size <= GZIP_MAX) or not compressible(f.content_type):
            return None
        with self._lock:
            cached = self._gzipped.get(f.etag)
        if cached is not None:
            return cached
        data = f.file.read()
        f.file.seek(0)
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        with self._lock:
            if f.etag not in self._gzipped:
                self._gzipped[f.etag] = packed
                self._gzipped_size += len(packed)
                while self._gzipped_size > GZIP_CACHE and self._gzipped:
                    oldest = next(iter(self._gzipped))
                    self._gzipped_size -= len(self._gzipped.pop(oldest))
        return packed

    def _etag(self, f: BinaryIO, st: os.stat_result) -> str:
        """Hash of the open file's bytes (what we send), cached per file version."""
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._hashes.get(key)
        if cached is None:
            h = hashlib.blake2b(digest_size=16)
            while block := f.read(CHUNK):
                h.update(block)
            f.seek(0)
            cached = f'"{h.hexdigest()}"'
            with self._lock:
                if len(self._hashes) > 50_000:
                    self._hashes.clear()
                self._hashes[key] = cached
        return cached
