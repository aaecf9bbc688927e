"""The feeds output folder served as static files, with conditional GET.

Feed readers ask publishers to honour conditional requests (FIELD-NOTES "What feed
readers' maintainers ask"): every file gets a strong ``ETag`` (a hash of its bytes, so
a ``build --force`` that rewrites the same bytes keeps it) and ``Last-Modified``; a
matching ``If-None-Match`` or ``If-Modified-Since`` gets ``304 Not Modified``
(RFC 9110 §13.1.1, §13.1.3, §13.2.2, §15.4.5).

Paths never leave the folder: a request path is split into segments and refused when a
segment is ``..``, ``.``, hidden (``.name``, which also hides the writers' temp files)
or holds a NUL or backslash; the resolved file (symlinks followed) must still lie
inside the folder.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

# Feed formats by file name first (rss.xml and atom.xml are both .xml), then by suffix.
_BY_NAME = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
_BY_SUFFIX = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".eml": "message/rfc822",
}
CHUNK = 64 * 1024


def content_type(name: str) -> str:
    if name in _BY_NAME:
        return _BY_NAME[name]
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


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
        ours = etag.removeprefix("W/")
        return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))
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
            real = real / "index.html"
        try:
            f = open(real, "rb")  # noqa: SIM115 - closed by the caller / chunks()
        except OSError:
            return None
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
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
