"""The feeds decider: which feed documents exist, what goes into each, and their fingerprints.

Pure functions of (configuration, stored rows, ``now``): no I/O, tested directly.

Paging (RFC 5005 §4, archived feeds). Every feed orders *all* its stored articles — any
status — by the stable key (first_seen, published, id) and cuts that sequence into slots
of ``archive_page_size``. Each full page (once there are two) is an archive document
holding the page's
articles that are visible now. Because the key never changes and retracted or scheduled
articles keep their slot, a new article never moves an older one to another page: a full
page is rewritten only when one of its own articles is edited, retracted or becomes
visible (or the feed's metadata changes). The current feed holds the newest
``items_per_feed`` visible articles plus the visible ones in the open (not yet full)
page, so the current feed and the archives together always hold every article.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from feedpub import __version__
from feedpub.config import Config
from feedpub.feeds.model import (
    FILE_NAMES,
    Enclosure,
    FeedDoc,
    FeedInfo,
    FeedKind,
    Format,
    Item,
    Person,
)
from feedpub.links import signup_offers
from feedpub.text import absolute_url, clean_text, one_line, plain_line, slugify
from feedpub.types import Article, ArticleStatus

# Bump when the output of any writer changes, so every feed is rebuilt once.
WRITER_VERSION = "3"
GENERATOR_URI = "https://github.com/feedpub/feedpub"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
# Stored text is already clean plain text (sources' contract); re-clean only when it could
# matter, and never as HTML: a stored "a < b and c > d" or "&amp;" is text, kept verbatim.
_UNCLEAN_LINE = re.compile("[\x00-\x1f\x7f\ufffe\uffff\ud800-\udfff]|\\s\\s|^\\s|\\s$")
_UNCLEAN_HTML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def _line(value: str) -> str:
    return value if _UNCLEAN_LINE.search(value) is None else one_line(value)


def _html(value: str) -> str:
    return value if _UNCLEAN_HTML.search(value) is None else clean_text(value)


@dataclass(frozen=True, slots=True)
class AuthorRow:
    slug: str
    name: str
    email: str | None = None
    uri: str | None = None
    bio: str = ""


@dataclass(frozen=True, slots=True)
class FeedSpec:
    kind: FeedKind
    key: str  # "" for the site
    title: str
    description: str
    dir: str  # relative to the output dir: "" or "beats/{slug}/"
    home_url: str
    author: Person | None = None  # feed-level author: the reporter of an author feed
    # The build writes {dir}index.html, the HTML page home_url points at (False: the site
    # itself, or a beat/author whose config ``url`` names the CMS's own page).
    page: bool = False
    bio: str = ""  # an author's bio, shown on the author's page

    @property
    def ident(self) -> str:
        return f"{self.kind.value}:{self.key}"

    def path(self, fmt: Format, page: int | None = None) -> str:
        """Output path of this feed (``page``: an RFC 5005 archive page, 1 = oldest)."""
        arch = f"archive/{page}/" if page is not None else ""
        return f"{self.dir}{arch}{FILE_NAMES[fmt]}"


@dataclass(frozen=True, slots=True)
class Slot:
    """One article's place in a feed's archive sequence (ordered by the stable key)."""

    id: str
    generation: int  # the article's changed_generation
    visible: bool


# ---- which feeds exist -----------------------------------------------------------------


def feeds_url(config: Config) -> str:
    """Where the output folder is served (``[output] base_url``, default the site's)."""
    url = config.output.base_url or config.site.base_url
    return url if url.endswith("/") else url + "/"


def _dir(pattern: str, slug: str) -> str:
    d = pattern.format(slug=slug).strip("/")
    return d + "/" if d else ""


PAGE_NAME = "index.html"  # a beat's or author's HTML page, in its feed folder


def beat_home_url(config: Config, slug: str) -> str:
    """Where every link to a beat points: its ``url`` (the CMS's page), else the page the
    build writes in its feed folder."""
    for b in config.beats:
        if b.slug == slug and b.url:
            return b.url
    return feeds_url(config) + _dir(config.output.beat_path, slug)


def author_page_urls(config: Config) -> dict[str, str]:
    """Author slug -> ``[[authors]] url`` (the CMS's author page) for those that set one."""
    return {(a.slug or slugify(a.name)): a.url for a in config.authors if a.url}


def feed_specs(config: Config, authors: Sequence[AuthorRow]) -> list[FeedSpec]:
    """Site first, then every configured beat (config order), then every author (by slug)."""
    site = config.site
    specs = [
        FeedSpec(
            FeedKind.SITE,
            "",
            site.title,
            site.description or site.title,
            "",
            site.base_url,
        )
    ]
    base = feeds_url(config)
    for b in config.beats:
        specs.append(
            FeedSpec(
                FeedKind.BEAT,
                b.slug,
                f"{site.title}: {b.title}",
                b.description or f"{b.title} from {site.title}",
                _dir(config.output.beat_path, b.slug),
                beat_home_url(config, b.slug),
                page=not b.url,
            )
        )
    cms = author_page_urls(config)
    for a in sorted(authors, key=lambda a: a.slug):
        folder = _dir(config.output.author_path, a.slug)
        specs.append(
            FeedSpec(
                FeedKind.AUTHOR,
                a.slug,
                f"{site.title}: {a.name}",
                plain_line(a.bio) or f"Articles by {a.name} in {site.title}",
                folder,
                cms.get(a.slug) or base + folder,
                author=Person(plain_line(a.name) or a.slug, a.email, a.uri),
                page=a.slug not in cms and bool(folder),
                bio=plain_line(a.bio),
            )
        )
    return specs


def page_size(config: Config) -> int:
    return config.output.archive_page_size or config.output.items_per_feed


# ---- visibility and paging -------------------------------------------------------------


def is_visible(status: str, published: datetime, now: datetime) -> bool:
    """Readers see an article when it is published and its time has come."""
    return status == ArticleStatus.PUBLISHED.value and published <= now


def full_pages(n_slots: int, size: int) -> int:
    """Archive pages to publish: every full page, but only once there are two of them.

    A lone archive page would have no neighbour to link to (RFC 5005 §4 prev-archive /
    next-archive; the W3C validator warns "ArchiveIncomplete"), so until the second page
    fills, the current feed carries those articles itself. Page 1 is then born with its
    next-archive link and never needs rewriting when newer pages fill.
    """
    n = n_slots // size
    return n if n >= 2 else 0


def page_of(slots: Sequence[Slot], page: int, size: int) -> Sequence[Slot]:
    """Slots of archive page ``page`` (1 = oldest)."""
    return slots[(page - 1) * size : page * size]


def tail_of(slots: Sequence[Slot], size: int) -> Sequence[Slot]:
    return slots[full_pages(len(slots), size) * size :]


def current_ids(newest: Sequence[str], tail: Iterable[Slot]) -> set[str]:
    """The current feed: the newest visible articles plus the visible ones of the open page."""
    return set(newest) | {s.id for s in tail if s.visible}


# ---- fingerprints ----------------------------------------------------------------------


def _digest(obj: Any) -> str:
    raw = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def config_fingerprint(config: Config, authors: Sequence[AuthorRow]) -> str:
    """Everything outside the articles that shows in some feed."""
    return _digest(
        {
            "writer": WRITER_VERSION,
            "version": __version__,
            "site": config.site.model_dump(mode="json"),
            "output": config.output.model_dump(mode="json", exclude={"dir", "templates_dir"}),
            "beats": [b.model_dump(mode="json") for b in config.beats],
            "authors": [[a.slug, a.name, a.email, a.uri, a.bio] for a in authors],
            "author_urls": author_page_urls(config),
            "signup": signup_offers(config),  # the beat/author pages link to sign-up
        }
    )


def doc_fingerprint(
    config_fp: str, path: str, n_full: int, items: Iterable[tuple[str, int]]
) -> str:
    """A document's fingerprint: it changes exactly when its rendered bytes may change."""
    return _digest([config_fp, path, n_full, list(items)])


# ---- turning articles into feed documents ----------------------------------------------


def atom_id(article_id: str) -> str:
    """RFC 4287 §4.2.6: atom:id is an IRI. Ids that are not IRIs get a stable urn."""
    if _SCHEME.match(article_id):
        return article_id
    return "urn:feedpub:" + quote(article_id, safe="")


def _enclosure(article: Article) -> Enclosure | None:
    img = article.image
    if img is None:
        return None
    mime = img.type or mimetypes.guess_type(img.url.split("?", 1)[0])[0]
    if not mime:
        mime = "application/octet-stream"
    return Enclosure(
        img.url,
        mime,
        img.length if img.length and img.length > 0 else None,
        img.width if img.width and img.width > 0 else None,
        img.height if img.height and img.height > 0 else None,
        _line(img.alt) if img.alt else None,
    )


def to_item(
    article: Article,
    config: Config,
    authors: Mapping[str, AuthorRow],
    beat_titles: Mapping[str, str],
) -> Item:
    tz = config.site.tz
    people = []
    for slug, name in zip(article.author_slugs, article.authors, strict=False):
        row = authors.get(slug)
        people.append(Person(_line(name), row.email if row else None, row.uri if row else None))
    cats: list[str] = []
    if article.beat:
        cats.append(beat_titles.get(article.beat, article.beat))
    seen = {c.casefold() for c in cats}
    for t in article.tags:  # tag "technology" under beat "Technology": one category
        if t.casefold() not in seen:
            seen.add(t.casefold())
            cats.append(t)
    return Item(
        id=article.id,
        atom_id=atom_id(article.id),
        guid_is_permalink=article.id == article.url,
        url=article.url,
        title=_line(article.title),
        summary=_line(article.summary),
        content_html=_html(article.content_html),
        authors=tuple(people),
        categories=tuple(c for c in (_line(c) for c in cats) if c),
        published=article.published.astimezone(tz),
        updated=max(article.updated, article.published).astimezone(tz),
        image=_enclosure(article),
        language=article.language,
    )


def sort_items(items: Iterable[Item]) -> tuple[Item, ...]:
    """Newest first; ties broken by id so the order never depends on the query plan."""
    return tuple(sorted(items, key=lambda i: (i.published, i.id), reverse=True))


def _urls(base: str, spec: FeedSpec, page: int | None) -> tuple[tuple[Format, str], ...]:
    return tuple((f, base + spec.path(f, page)) for f in Format)


def make_doc(
    config: Config,
    spec: FeedSpec,
    items: Iterable[Item],
    *,
    page: int | None,
    n_full: int,
    empty_updated: datetime = EPOCH,
) -> FeedDoc:
    """The document for the current feed (``page`` None) or one archive page.

    ``n_full``: number of archive pages (the current feed links to the newest).
    ``empty_updated``: the date of a feed with no item yet (a new beat). Feeds must carry
    one (RFC 4287 §4.2.15); the store's creation time is stable, so rebuilds stay
    byte-identical, and plausible, unlike 1970 (the W3C validator warns about that)."""
    ordered = sort_items(items)
    updated = max((i.updated for i in ordered), default=empty_updated)
    return FeedDoc(make_info(config, spec, updated, page=page, n_full=n_full), ordered)


def make_info(
    config: Config, spec: FeedSpec, updated: datetime, *, page: int | None, n_full: int
) -> FeedInfo:
    """The feed-level fields of :func:`make_doc`'s document (``updated``: its newest item
    change, or the date of an empty feed)."""
    base = feeds_url(config)
    site = config.site
    prev = page - 1 if page is not None else n_full
    return FeedInfo(
        kind=spec.kind,
        key=spec.key,
        title=plain_line(spec.title),
        description=plain_line(spec.description) or plain_line(spec.title),
        language=site.language,
        home_url=spec.home_url,
        self_urls=_urls(base, spec, page),
        updated=updated.astimezone(site.tz),
        generator="feedpub",
        generator_version=__version__,
        generator_uri=GENERATOR_URI,
        # An author's feed is by that reporter; the others by the newsroom.
        author=spec.author or Person(plain_line(site.title), site.author_email),
        hub=site.websub_hub,
        icon=_abs(site.icon, site.base_url),
        logo=_abs(site.logo, site.base_url),
        is_archive=page is not None,
        current_urls=_urls(base, spec, None) if page is not None else (),
        prev_archive_urls=_urls(base, spec, prev) if prev >= 1 else (),
        next_archive_urls=_urls(base, spec, 2) if page == 1 else (),
    )


def _abs(url: str | None, base: str) -> str | None:
    if not url:
        return None
    return absolute_url(url, base)


# ---- which feeds a change touches ------------------------------------------------------


def affected_feeds(
    changed: Iterable[tuple[str | None, Sequence[str]]],
    old_counts: Mapping[str, int],
    new_counts: Mapping[str, int],
) -> set[str]:
    """Feed idents (``kind:key``) to re-plan after a change.

    ``changed``: (beat, author slugs) of every article changed since the last build.
    A feed is affected when a changed article is in it now, or when its slot count moved
    (an article left it: beat or author reassigned). Generations only grow, so an article
    leaving a feed while another enters it is caught by the entering one.
    """
    out: set[str] = set()
    any_change = False
    for beat, slugs in changed:
        any_change = True
        if beat:
            out.add(f"{FeedKind.BEAT.value}:{beat}")
        out.update(f"{FeedKind.AUTHOR.value}:{s}" for s in slugs)
    for ident in set(old_counts) | set(new_counts):
        if old_counts.get(ident, 0) != new_counts.get(ident, 0):
            out.add(ident)
            any_change = True
    if any_change:
        out.add(f"{FeedKind.SITE.value}:")
    return out
