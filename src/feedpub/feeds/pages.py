"""A beat's or an author's HTML page, ``{feed folder}index.html``: where every feed's
HTML link (RSS ``<link>``, Atom ``rel=alternate``, JSON ``home_page_url``, OPML
``htmlUrl``), the index page's headings and the digest's "N more in BEAT →" point, so
that ``feedpub serve`` (or any static host) answers them instead of 404.

It shows the latest items with links (each in its own language and direction), the
feed's three formats with autodiscovery links for this feed only, the author's bio, and
newsletter sign-up links when sign-up pages exist (:func:`signup_links`). Rendered from
``feed_page.html.j2`` (overridable in ``[output] templates_dir``) from the same document
as the current feed, so it is rewritten exactly when that feed is, atomically.
A beat or author whose config sets ``url`` (the CMS's own page) gets no page: every link
points at that URL instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from feedpub.config import Config
from feedpub.feeds.model import FeedDoc, FeedKind, Format
from feedpub.feeds.plan import AuthorRow, FeedSpec
from feedpub.language import direction
from feedpub.links import signup_offers
from feedpub.templating import html_environment

TEMPLATE = "feed_page.html.j2"
MAX_ITEMS = 30  # the latest; the feeds and their archives hold the rest


@dataclass(frozen=True, slots=True)
class SignupLink:
    title: str  # the newsletter's title
    url: str


def signup_links(config: Config, kind: FeedKind, key: str) -> list[SignupLink]:
    """Newsletters a reader of this beat (or author) can sign up to, with the sign-up page's
    address: for a beat, the newsletters that carry it; for an author, every newsletter
    with sign-up on. Empty when sign-up is off."""
    return [
        SignupLink(title, url)
        for _slug, title, beats, url in signup_offers(config)
        if kind is not FeedKind.BEAT or key in beats
    ]


def render_page(
    config: Config,
    doc: FeedDoc,
    *,
    heading: str,
    description: str,
    bio: str,
    feeds_index_url: str,
    signup: Sequence[SignupLink],
    templates_dir: Path | None,
) -> bytes:
    info = doc.info
    site = config.site
    items = [
        {
            "title": i.title,
            "url": i.url,
            "summary": i.summary,
            "published": i.published,
            "date_label": f"{i.published:%Y-%m-%d}",
            "authors": [p.name for p in i.authors],
            "lang": i.language or info.language,
            "dir": direction(i.language or info.language),
        }
        for i in doc.items[:MAX_ITEMS]
    ]
    html = (
        html_environment(templates_dir, keep_trailing_newline=True)
        .get_template(TEMPLATE)
        .render(
            site={
                "title": site.title,
                "base_url": site.base_url,
                "language": site.language,
                "dir": direction(site.language),
            },
            kind=info.kind.value,
            heading=heading,
            description=description,
            bio=bio,
            feed={
                "title": info.title,
                "rss_url": info.self_url(Format.RSS),
                "atom_url": info.self_url(Format.ATOM),
                "json_url": info.self_url(Format.JSON),
            },
            feeds_index_url=feeds_index_url,
            signup=list(signup),
            items=items,
        )
    )
    return html.encode("utf-8")


def feed_page(
    config: Config,
    spec: FeedSpec,
    doc: FeedDoc,
    authors: Mapping[str, AuthorRow],
    feeds_base: str,
    templates_dir: Path | None,
) -> bytes:
    """The page of ``spec`` (a beat or an author) from its current feed document."""
    if spec.kind is FeedKind.AUTHOR:
        row = authors.get(spec.key)
        heading = row.name if row else spec.key
    else:
        heading = next((b.title for b in config.beats if b.slug == spec.key), spec.key)
    return render_page(
        config,
        doc,
        heading=heading,
        description=doc.info.description,
        bio=spec.bio,
        feeds_index_url=feeds_base + "index.html",
        signup=signup_links(config, spec.kind, spec.key),
        templates_dir=templates_dir,
    )
