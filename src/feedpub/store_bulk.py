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
        {
            "article_id": w.article.id,
            "author_slug": slug,
            "position": i,
            "first_seen": first_seen,
            "published": w.article.published,
        }
        for w in writes
        if w.insert
        for i, slug in enumerate(dict.fromkeys(w.article.author_slugs))
    ]
    if links:
        conn.execute(sa.insert(aa), links)
    relinks = [
        {"b_id": w.article.id, "b_slug": slug, "b_position": i}
        for w in writes
        if not w.insert
        for i, slug in enumerate(dict.fromkeys(w.article.author_slugs))
    ]
    if relinks:  # their first_seen is the stored article's
        conn.execute(relink_statement(), relinks)


def relink_statement() -> Any:
    """One author link of a stored article, its archive key copied from the article
    (executed with ``b_id``, ``b_slug``, ``b_position``)."""
    a, aa = s.articles, s.article_authors
    return sa.insert(aa).from_select(
        ["article_id", "author_slug", "position", "first_seen", "published"],
        sa.select(
            a.c.id,
            sa.bindparam("b_slug", type_=aa.c.author_slug.type),
            sa.bindparam("b_position", type_=aa.c.position.type),
            a.c.first_seen,
            a.c.published,
        ).where(a.c.id == sa.bindparam("b_id")),
    )


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
