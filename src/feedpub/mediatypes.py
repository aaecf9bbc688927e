"""Media types of the files feedpub writes, by name: what ``feedpub serve`` sends and what
an object-storage upload declares (one table for both)."""

from __future__ import annotations

import mimetypes
import os

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
_COMPRESSIBLE = ("text/", "application/rss+xml", "application/atom+xml", "application/xml",
                 "application/feed+json", "application/json", "application/javascript",
                 "image/svg+xml")  # fmt: skip


def compressible(ctype: str) -> bool:
    return ctype.startswith(_COMPRESSIBLE)


def content_type(name: str) -> str:
    if name in _BY_NAME:
        return _BY_NAME[name]
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"
