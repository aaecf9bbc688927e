"""Web archive of sent editions, under the feeds output folder:

- ``newsletters/{newsletter}/{edition}.html``: the edition as a non-personalized page
  (every beat of the edition, no unsubscribe tokens);
- ``newsletters/{newsletter}/index.html``: the list of sent editions, newest first;
- ``newsletters/{newsletter}/atom.xml``: an Atom 1.0 feed (RFC 4287) of the editions.

Files are written atomically and only when their bytes change.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from lxml import etree

from feedpub import schema as s
from feedpub.atomicfile import write_atomic
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.outbox import edition_key
from feedpub.digest.build import (
    EditionBuilder,
    EditionInfo,
    archive_url,
    atom_url,
    index_url,
    long_date,
)
from feedpub.digest.frozen import issue_number, slot_time
from feedpub.digest.render import Renderer
from feedpub.errors import FeedpubError
from feedpub.language import direction
from feedpub.links import signup_url
from feedpub.store import Store

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 50

log = logging.getLogger("feedpub.digest")


def newsletter_folder(config: Config, newsletter: str) -> Path:
    return config.output_dir / "newsletters" / newsletter


def _rfc3339(d: datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def _sent_editions(store: Store, newsletter: str) -> list[Any]:
    e = s.editions
    with store.read() as conn:
        return list(
            conn.execute(
                sa.select(e)
                .where(e.c.newsletter == newsletter, e.c.status == "sent")
                .order_by(e.c.number.desc())
            ).all()
        )


def _titles(store: Store, edition_id: int) -> list[str]:
    ea, a = s.edition_articles, s.articles
    with store.read() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.select(a.c.title)
                .join(ea, ea.c.article_id == a.c.id)
                .where(ea.c.edition_id == edition_id)
                .order_by(ea.c.position)
            )
        ]


def write_archive(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    *,
    builder: EditionBuilder | None = None,
    renderer: Renderer | None = None,
) -> Path | None:
    """Write ``builder``'s edition page (when given), then the index and the Atom feed.
    Returns the edition page's path."""
    folder = newsletter_folder(config, nl.slug)
    renderer = renderer or (builder.renderer if builder else Renderer(config))
    page: Path | None = None
    if builder is not None:
        beats = [b for b, _ in builder.sections]
        html = builder.render(beats, personal=False).html
        page = folder / f"{builder.edition.key}.html"
        write_atomic(page, html.encode("utf-8"))
    editions = _sent_editions(store, nl.slug)
    items = []
    for row in editions:
        with store.read() as conn:
            shown = issue_number(conn, nl.slug, row.number)

        key = edition_key(row.slot)
        info = EditionInfo(
            row.id,
            row.newsletter,
            row.slot,
            key,
            shown,
            slot_time(row.slot, row.created),
            row.created,
        )
        subject = EditionBuilder(config, renderer, nl, info, [], None).subject()
        items.append(
            {
                "row": row,
                "url": archive_url(config, nl.slug, key),
                "title": subject,
                "date_label": long_date(info.date.astimezone(nl.tz)),
                "number": shown,
                "article_count": row.article_count,
                "updated": row.created,  # frozen then; deterministic (not the send clock)
            }
        )
    ctx = {
        "site": {
            "title": config.site.title,
            "base_url": config.site.base_url,
            "language": config.site.language,
            "dir": direction(config.site.language),
        },
        "newsletter": {
            "slug": nl.slug,
            "title": nl.title,
            "description": nl.description,
            "index_url": index_url(config, nl.slug),
            "atom_url": atom_url(config, nl.slug),
            "signup_url": signup_url(config, nl.slug),
        },
        "editions": items,
    }
    write_atomic(folder / "index.html", renderer.index(ctx).encode("utf-8"))
    write_atomic(folder / "atom.xml", _atom(config, store, nl, items[:FEED_ENTRIES]))
    if config.output.url is not None:
        _upload(config, folder)
    return page


def _upload(config: Config, folder: Path) -> None:
    """This newsletter's archive to ``[output] url`` now (changed files only): any instance
    may finish an edition, and only the leader's build mirrors the rest of the folder."""
    from feedpub.feeds import s3

    rels = [p.relative_to(config.output_dir).as_posix() for p in folder.glob("*") if p.is_file()]
    try:
        s3.publish(config, only=[r for r in rels if not r.rsplit("/", 1)[-1].startswith(".")])
    except FeedpubError as e:
        log.error(
            "newsletter archive not uploaded; it goes up with this newsletter's next edition",
            extra={"error": str(e), "folder": str(folder)},
        )


def _atom(config: Config, store: Store, nl: NewsletterConfig, items: list[dict[str, Any]]) -> bytes:
    def el(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
        node = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})  # type: ignore[dict-item]
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", config.site.language)
    el(feed, "id", index_url(config, nl.slug))
    el(feed, "title", nl.title)
    if nl.description:
        el(feed, "subtitle", nl.description)
    newest = max((i["updated"] for i in items), default=None)
    el(feed, "updated", _rfc3339(newest) if newest else "1970-01-01T00:00:00Z")
    el(feed, "link", rel="self", type="application/atom+xml", href=atom_url(config, nl.slug))
    el(feed, "link", rel="alternate", type="text/html", href=index_url(config, nl.slug))
    author = el(feed, "author")
    el(author, "name", config.site.title)
    el(author, "uri", config.site.base_url)
    for item in items:
        entry = el(feed, "entry")
        el(entry, "id", item["url"])
        el(entry, "title", item["title"])
        el(entry, "updated", _rfc3339(item["updated"]))
        el(entry, "published", _rfc3339(item["row"].created))
        el(entry, "link", rel="alternate", type="text/html", href=item["url"])
        titles = _titles(store, item["row"].id)
        summary = f"{len(titles)} articles: " + "; ".join(titles) if titles else "No articles."
        el(entry, "summary", summary)
    return bytes(etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True))
