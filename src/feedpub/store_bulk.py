"""Bulk writes of the collect: one prepared statement per table per batch (executemany;
SQLAlchemy's insertmanyvalues for the inserts), not one statement built per article.

At 10,000 new articles building an INSERT per article (statement construction, value
coercion, cache key) cost more than parsing the Markdown; sqlite3's own work was 2%."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.types import Article, ArticleStatus


@dataclass(frozen=True, slots=True)
class ArticleWrite:
    article: Article
    source: str
    source_key: str
    content_hash: str
    insert: bool


def article_values(w: ArticleWrite, generation: int) -> dict[str, Any]:
    """The ``articles`` row of one write (without ``id`` and ``first_seen``)."""
    a = w.article
    img = a.image
    return {
        "source": w.source,
        "source_key": w.source_key,
        "url": a.url,
        "slug": a.slug,
        "title": a.title,
        "summary": a.summary,
        "content_html": a.content_html,
        "reading_minutes": a.reading_minutes,
        "beat": a.beat,
        "tags": list(a.tags),
        "image_url": img.url if img else None,
        "image_type": img.type if img else None,
        "image_length": img.length if img else None,
        "image_alt": img.alt if img else None,
        "image_width": img.width if img else None,
        "image_height": img.height if img else None,
        "language": a.language,
        "published": a.published,
        "updated": a.updated,
        "status": a.status.value,
        "content_hash": w.content_hash,
        "changed_generation": generation,
    }


def write_articles(
    conn: Connection, writes: Sequence[ArticleWrite], *, first_seen: datetime, generation: int
) -> None:
    """Insert the new articles and rewrite the changed ones, with their author links."""
    a, aa = s.articles, s.article_authors
    inserts = [
        {"id": w.article.id, "first_seen": first_seen, **article_values(w, generation)}
        for w in writes
        if w.insert
    ]
    updates = [
        {"b_id": w.article.id, **article_values(w, generation)} for w in writes if not w.insert
    ]
    if inserts:
        conn.execute(sa.insert(a), inserts)
    if updates:
        conn.execute(sa.update(a).where(a.c.id == sa.bindparam("b_id")), updates)
        conn.execute(
            sa.delete(aa).where(aa.c.article_id == sa.bindparam("b_id")),
            [{"b_id": u["b_id"]} for u in updates],
        )
    links = [
        {"article_id": w.article.id, "author_slug": slug, "position": i}
        for w in writes
        for i, slug in enumerate(dict.fromkeys(w.article.author_slugs))
    ]
    if links:
        conn.execute(sa.insert(aa), links)


def set_statuses(
    conn: Connection, changes: Iterable[tuple[str, ArticleStatus]], generation: int
) -> None:
    """Status-only changes (retractions), one UPDATE executed for all of them."""
    rows = [
        {"b_id": article_id, "status": status.value, "changed_generation": generation}
        for article_id, status in changes
    ]
    if rows:
        a = s.articles
        conn.execute(sa.update(a).where(a.c.id == sa.bindparam("b_id")), rows)


def save_file_stats(
    conn: Connection,
    source: str,
    stats: dict[str, tuple[int, int]],
    *,
    complete: bool,
    known: dict[str, tuple[int, int]] | None = None,
) -> None:
    """Make ``source_files`` of ``source`` hold ``stats`` (only those rows, when
    ``complete``): inserts, updates and deletes, each one executemany. ``known`` is what
    the table held when the source was read; when it still holds exactly that (one
    aggregate query, not every row) only the difference is written."""
    t = s.source_files
    if known is not None and stats == known:
        return  # nothing to write (rows a concurrent collect wrote since are newer: kept)
    existing = known if known is not None and _unchanged_since(conn, source, known) else None
    if existing is None and not complete:  # a part of the listing: its rows only
        existing = {}
        keys = list(stats)
        for i in range(0, len(keys), 400):
            existing.update(
                (r.path, (r.size, r.mtime_ns))
                for r in conn.execute(
                    sa.select(t.c.path, t.c.size, t.c.mtime_ns).where(
                        t.c.source == source, t.c.path.in_(keys[i : i + 400])
                    )
                )
            )
    if existing is None:
        existing = {
            r.path: (r.size, r.mtime_ns)
            for r in conn.execute(
                sa.select(t.c.path, t.c.size, t.c.mtime_ns).where(t.c.source == source)
            )
        }
    new, changed = [], []
    for key, stat in stats.items():
        old = existing.get(key)
        if old is None:
            new.append({"source": source, "path": key, "size": stat[0], "mtime_ns": stat[1]})
        elif old != stat:
            changed.append({"b_path": key, "size": stat[0], "mtime_ns": stat[1]})
    if new:
        conn.execute(sa.insert(t), new)
    if changed:
        conn.execute(
            sa.update(t).where(t.c.source == source, t.c.path == sa.bindparam("b_path")), changed
        )
    if complete:
        gone = [{"b_path": key} for key in existing if key not in stats]
        if gone:
            conn.execute(
                sa.delete(t).where(t.c.source == source, t.c.path == sa.bindparam("b_path")), gone
            )


def stats_checksum(conn: Connection, source: str) -> tuple[int, int, int]:
    """(rows, total size, sum of mtimes mod a prime) of ``source_files`` for ``source``."""
    t = s.source_files
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(t.c.size), 0),
            sa.func.coalesce(sa.func.sum(t.c.mtime_ns % _PRIME), 0),
        ).where(t.c.source == source)
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


_PRIME = 1_000_000_007


def checksum_of(stats: dict[str, tuple[int, int]]) -> tuple[int, int, int]:
    return (
        len(stats),
        sum(v[0] for v in stats.values()),
        sum(v[1] % _PRIME for v in stats.values()),
    )


def _unchanged_since(conn: Connection, source: str, known: dict[str, tuple[int, int]]) -> bool:
    return stats_checksum(conn, source) == checksum_of(known)
