"""The build's discovery files: ``feeds.opml`` and ``index.html`` (every feed, with the
date of its newest item), written after the feeds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from feedpub.config import Config
from feedpub.feeds import queries
from feedpub.feeds.index_page import IndexFeed, newsletter_links, render_index
from feedpub.feeds.model import FeedKind, Format
from feedpub.feeds.opml import render_opml
from feedpub.feeds.output import OutputDir
from feedpub.feeds.plan import EPOCH, FeedSpec

GROUPS = {FeedKind.SITE: "Site", FeedKind.BEAT: "Beats", FeedKind.AUTHOR: "Authors"}


def write_discovery(
    config: Config,
    conn: Connection,
    out: OutputDir,
    base: str,
    specs: Sequence[FeedSpec],
    records: Sequence[tuple[str, str, datetime | None]],
) -> list[str]:
    """Write both files; the paths of those that changed."""
    site = config.site
    updated = queries.feed_updated(conn, [sp.path(Format.ATOM) for sp in specs])
    for p, _fp, u in records:
        updated[p] = u
    entries = []
    for sp in specs:
        u = updated.get(sp.path(Format.ATOM))
        entries.append(
            IndexFeed(
                group=GROUPS[sp.kind],
                title=sp.title,
                description=sp.description,
                home_url=sp.home_url,
                rss_url=base + sp.path(Format.RSS),
                atom_url=base + sp.path(Format.ATOM),
                json_url=base + sp.path(Format.JSON),
                updated=u.astimezone(site.tz) if u is not None and u > EPOCH else None,
            )
        )
    newest = max((e.updated for e in entries if e.updated), default=EPOCH)
    opml = render_opml(
        f"{site.title} feeds",
        base + "index.html",
        [(e.group, e.title, e.rss_url, e.home_url) for e in entries],
        newest,
    )
    index = render_index(
        site_title=site.title,
        site_url=site.base_url,
        language=site.language,
        opml_url=base + "feeds.opml",
        feeds=entries,
        newsletters=newsletter_links(config),
        templates_dir=config.resolve(config.output.templates_dir)
        if config.output.templates_dir
        else None,
    )
    return [
        name
        for name, data in (("feeds.opml", opml), ("index.html", index))
        if out.write(name, data)
    ]
