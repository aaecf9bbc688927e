"""Format-neutral feed documents: what every writer (feedgen, streaming, JSON Feed) renders.

Plain frozen values, built by :mod:`feedpub.feeds.plan`; no I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class FeedKind(enum.StrEnum):
    SITE = "site"
    BEAT = "beat"
    AUTHOR = "author"


class Format(enum.StrEnum):
    RSS = "rss"
    ATOM = "atom"
    JSON = "json"


FILE_NAMES: dict[Format, str] = {
    Format.RSS: "rss.xml",
    Format.ATOM: "atom.xml",
    Format.JSON: "feed.json",
}
MEDIA_TYPES: dict[Format, str] = {
    Format.RSS: "application/rss+xml",
    Format.ATOM: "application/atom+xml",
    Format.JSON: "application/feed+json",
}


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str | None = None
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str  # MIME type; always known (guessed from the URL when the store has none)
    length: int | None = None  # bytes; omitted (never "None") when unknown
    width: int | None = None  # pixels, when known (Media RSS width/height)
    height: int | None = None
    alt: str | None = None  # plain text: what the image shows


@dataclass(frozen=True, slots=True)
class Item:
    id: str  # the stored article id: permanent
    atom_id: str  # ``id`` when it is an IRI, else a urn derived from it (RFC 4287 §4.2.6)
    guid_is_permalink: bool  # RSS 2.0 <guid isPermaLink>: true only when the id is the URL
    url: str
    title: str  # plain text
    summary: str  # plain text
    content_html: str  # sanitized HTML fragment, absolute URLs
    authors: tuple[Person, ...]
    categories: tuple[str, ...]  # beat title first, then tags
    published: datetime  # aware, in the site's zone
    updated: datetime
    image: Enclosure | None = None
    language: str | None = None  # BCP 47; None: the feed's language


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """Feed-level fields for one output document (current feed or one archive page)."""

    kind: FeedKind
    key: str  # "" for the site, else the beat or author slug
    title: str
    description: str  # never empty (RSS 2.0 requires <description>)
    language: str
    home_url: str  # the site / beat / author page (RSS channel link, Atom alternate)
    self_urls: tuple[tuple[Format, str], ...]  # where each format of this document is served
    updated: datetime  # newest item change; never the build time
    generator: str
    generator_version: str
    generator_uri: str
    author: Person  # feed-level author (Atom §4.1.1 needs one when an entry has none)
    hub: str | None = None  # WebSub hub
    icon: str | None = None
    logo: str | None = None
    # RFC 5005 §4 (archived feeds): links between the current feed and its archive pages.
    is_archive: bool = False
    current_urls: tuple[tuple[Format, str], ...] = ()  # archive pages -> current feed
    prev_archive_urls: tuple[tuple[Format, str], ...] = ()  # next older archive page
    # Only the oldest page links forward (to page 2, which exists whenever page 1 does):
    # every archive then has a neighbour link and no page is rewritten when a newer fills.
    next_archive_urls: tuple[tuple[Format, str], ...] = ()

    def self_url(self, fmt: Format) -> str:
        return dict(self.self_urls)[fmt]

    def current_url(self, fmt: Format) -> str | None:
        return dict(self.current_urls).get(fmt)

    def prev_archive_url(self, fmt: Format) -> str | None:
        return dict(self.prev_archive_urls).get(fmt)

    def next_archive_url(self, fmt: Format) -> str | None:
        return dict(self.next_archive_urls).get(fmt)


@dataclass(frozen=True, slots=True)
class FeedDoc:
    info: FeedInfo
    items: tuple[Item, ...]  # newest first
