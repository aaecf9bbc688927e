"""An article's rendered item entries (RSS ``<item>``, Atom ``<entry>``, JSON Feed item),
kept for reuse by every feed document that holds the article.

A full build renders each article about three times per format (in the site feed, its
beat's, its authors'); the entry's bytes do not depend on the document around it (only
on the feed language, the same for every feed of a site), so the archive pages are
assembled from entries rendered once: ``head + entries + tail`` is byte for byte what the
streaming writer and :func:`feedpub.feeds.jsonfeed.render_json` write for the document
(tests/test_feed_render_reuse.py).

The cache holds at most ``max_bytes`` of entries and forgets the least recently used
first: the full build renders documents in archive order across all feeds
(:mod:`feedpub.feeds.render`), so the entries a document needs were rendered recently.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from feedpub.feeds import jsonfeed, stream_writer
from feedpub.feeds.model import FeedInfo, Format, Item

# Per process (a full build on two cores holds two). The entries a document needs were
# rendered at most ~2,300 site positions before it (an author page of 50 with 50
# authors): 32 MB keeps ~4,000 entries of ~8 KB.
MAX_BYTES = 32 * 1024 * 1024
_OVERHEAD = 200  # bytes per entry besides the rendered text (key, objects, dict slot)

Key = tuple[str, int]  # (article id, changed_generation)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One article as every feed document shows it."""

    id: str
    published: datetime  # the item's, in the site's zone (documents sort on it)
    updated: datetime  # the item's (a document's <updated> is the newest)
    rss: bytes
    atom: bytes
    json: bytes

    @property
    def size(self) -> int:
        return len(self.rss) + len(self.atom) + len(self.json) + len(self.id) + _OVERHEAD

    def data(self, fmt: Format) -> bytes:
        if fmt is Format.RSS:
            return self.rss
        if fmt is Format.ATOM:
            return self.atom
        return self.json


def make_fragment(item: Item, info: FeedInfo) -> Fragment:
    """Render ``item``'s entries as they appear in any document in ``info.language``
    (the only thing the item writers read from the document). Raises what the writers
    raise for an item they refuse."""
    return Fragment(
        item.id,
        item.published,
        item.updated,
        stream_writer.rss_item(item, info).encode("utf-8"),
        stream_writer.atom_entry(item, info).encode("utf-8"),
        jsonfeed.item_json(item, info.language).encode("utf-8"),
    )


def assemble(info: FeedInfo, entries: list[Fragment]) -> dict[Format, bytes]:
    """The three documents for ``info`` holding ``entries`` (already newest first)."""
    rss = [stream_writer.rss_head(info).encode("utf-8")]
    rss.extend(e.rss for e in entries)
    rss.append(stream_writer.RSS_TAIL.encode("utf-8"))
    atom = [stream_writer.atom_head(info).encode("utf-8")]
    atom.extend(e.atom for e in entries)
    atom.append(stream_writer.ATOM_TAIL.encode("utf-8"))
    js = (
        jsonfeed.json_head(info).encode("utf-8")
        + b",".join(e.json for e in entries)
        + jsonfeed.JSON_TAIL.encode("utf-8")
    )
    return {Format.RSS: b"".join(rss), Format.ATOM: b"".join(atom), Format.JSON: js}


class FragmentCache:
    """Least recently used fragments, at most ``max_bytes`` of them (0: keep none;
    default :data:`MAX_BYTES`)."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self.bytes = 0
        self.peak_bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Key, Fragment] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Fragment | None:
        frag = self._entries.get(key)
        if frag is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return frag

    def put(self, key: Key, frag: Fragment) -> None:
        size = frag.size
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        while self._entries and self.bytes + size > self.max_bytes:
            _, gone = self._entries.popitem(last=False)
            self.bytes -= gone.size
        self._entries[key] = frag
        self.bytes += size
        self.peak_bytes = max(self.peak_bytes, self.bytes)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
