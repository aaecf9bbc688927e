"""The feeds stage's own store queries (SQLAlchemy Core; SQLite and PostgreSQL alike)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import feed_counts
from feedpub import schema as s
from feedpub.feeds.model import FeedKind, Format
from feedpub.feeds.plan import PAGE_NAME, AuthorRow, FeedSpec, Slot
from feedpub.store import Store, set_meta
from feedpub.types import Article, ArticleStatus

A = s.articles
AA = s.article_authors
FF = s.feed_files

STATE_KEY = "feeds.state"  # JSON: what the last build saw (see build.py)
GENERATION_KEY = "feeds.generation"  # the store generation the feeds reflect


def read_state(conn: Connection) -> tuple[int, int | None, dict[str, Any] | None]:
    """(store generation, generation the feeds reflect, last build state) in one query."""
    rows = dict(
        conn.execute(
            sa.select(s.meta.c.key, s.meta.c.value).where(
                s.meta.c.key.in_(("generation", GENERATION_KEY, STATE_KEY))
            )
        ).all()
    )
    built = rows.get(GENERATION_KEY)
    state = rows.get(STATE_KEY)
    return (
        int(rows.get("generation") or 0),
        int(built) if built is not None else None,
        json.loads(state) if state else None,
    )


def write_state(conn: Connection, generation: int, state: dict[str, Any]) -> None:
    set_meta(conn, GENERATION_KEY, str(generation))
    set_meta(conn, STATE_KEY, json.dumps(state, sort_keys=True))


def load_authors(conn: Connection) -> list[AuthorRow]:
    au = s.authors
    return [
        AuthorRow(r.slug, r.name, r.email, r.uri, r.bio or "")
        for r in conn.execute(
            sa.select(au.c.slug, au.c.name, au.c.email, au.c.uri, au.c.bio).order_by(au.c.slug)
        )
    ]


def slot_counts(conn: Connection, *, exact: bool) -> tuple[dict[str, int], int]:
    """Stored articles per feed (any status), as ``{"site:": n, "beat:SLUG": n,
    "author:SLUG": n}`` for the feeds holding any (a feed whose count moved lost or gained
    one), and how many of the store's count rows were read. ``exact``: counted from the
    articles (a full build); else the counts the store keeps (``feedpub.feed_counts``)."""
    if exact:
        return feed_counts.exact(conn), 0
    return feed_counts.read(conn)


# Delta rows past one per feed that an incremental build lets stand before folding them.
COMPACT_SLACK = 256


def tidy_counts(conn: Connection, *, full: bool, feeds: int, rows: int) -> list[str]:
    """After a build, in its write transaction: fold the store's count rows when they have
    piled up (``rows`` read for ``feeds`` feeds); after a full build also check them
    against the articles and recount when they differ. Returns the feeds that differed."""
    if full:
        # Counted again here, not compared with the build's own count: that one came from
        # the read snapshot, and a collect committed since (PostgreSQL) would look like drift.
        drifted = feed_counts.drifted(conn)
        if drifted:
            feed_counts.reset(conn)
            return drifted
        feed_counts.compact(conn)
    elif rows > feeds + COMPACT_SLACK:
        feed_counts.compact(conn)
    return []


@dataclass(frozen=True, slots=True)
class Changed:
    """An article changed since the last build, with its archive key and memberships."""

    id: str
    beat: str | None
    authors: tuple[str, ...]
    key: tuple[datetime, datetime, str]  # (first_seen, published, id)


def changed_since(
    conn: Connection, generation: int, since: datetime, now: datetime
) -> list[Changed]:
    """Articles changed after ``generation`` or whose publication time passed between the
    last build (``since``) and ``now``."""
    cond = sa.or_(
        A.c.changed_generation > generation,
        sa.and_(
            A.c.status == ArticleStatus.PUBLISHED.value,
            A.c.published > since,
            A.c.published <= now,
        ),
    )
    rows = conn.execute(
        sa.select(A.c.id, A.c.beat, A.c.first_seen, A.c.published).where(cond)
    ).all()
    if not rows:
        return []
    by_id: dict[str, list[str]] = {r.id: [] for r in rows}
    ids = list(by_id)
    for i in range(0, len(ids), 500):
        for r in conn.execute(
            sa.select(AA.c.article_id, AA.c.author_slug).where(
                AA.c.article_id.in_(ids[i : i + 500])
            )
        ):
            by_id[r.article_id].append(r.author_slug)
    return [
        Changed(r.id, r.beat, tuple(by_id[r.id]), (r.first_seen, r.published, r.id)) for r in rows
    ]


def _visible(now: datetime) -> Any:
    return sa.case(
        (sa.and_(A.c.status == ArticleStatus.PUBLISHED.value, A.c.published <= now), 1),
        else_=0,
    )


def _member(q: Any, spec: FeedSpec) -> Any:
    if spec.kind is FeedKind.BEAT:
        return q.where(A.c.beat == spec.key)
    if spec.kind is FeedKind.AUTHOR:
        return q.join(AA, AA.c.article_id == A.c.id).where(AA.c.author_slug == spec.key)
    return q


ORDER = (A.c.first_seen, A.c.published, A.c.id)
Key = tuple[datetime, datetime, str]


# An author's feed in archive order by its links' copy of the key (ix_article_authors_order).
AUTHOR_ORDER = (AA.c.first_seen, AA.c.published, AA.c.article_id)


def _order(spec: FeedSpec) -> tuple[Any, Any, Any]:
    return AUTHOR_ORDER if spec.kind is FeedKind.AUTHOR else ORDER


def load_slots(conn: Connection, spec: FeedSpec, now: datetime) -> list[Slot]:
    """Every stored article of the feed in archive order (first_seen, published, id)."""
    q = sa.select(A.c.id, A.c.changed_generation, _visible(now)).select_from(A)
    q = _member(q, spec).order_by(*_order(spec))
    return [Slot(r[0], int(r[1]), bool(r[2])) for r in conn.execute(q)]


def load_tail(
    conn: Connection, spec: FeedSpec, now: datetime, after: Key
) -> list[tuple[Slot, Key]]:
    """The feed's slots after ``after`` in archive order, with their keys (an index range
    scan: ix_articles_archive_order for the site, ix_articles_beat_order for a beat,
    ix_article_authors_order for an author)."""
    bound = sa.tuple_(
        sa.bindparam("k0", after[0], type_=A.c.first_seen.type),
        sa.bindparam("k1", after[1], type_=A.c.published.type),
        sa.bindparam("k2", after[2], type_=A.c.id.type),
    )
    order = _order(spec)
    q = sa.select(A.c.id, A.c.changed_generation, _visible(now), *order).select_from(A)
    q = _member(q, spec).where(sa.tuple_(*order) > bound).order_by(*order)
    return [(Slot(r[0], int(r[1]), bool(r[2])), (r[3], r[4], r[5])) for r in conn.execute(q)]


def slot_key(conn: Connection, article_id: str) -> Key:
    r = conn.execute(sa.select(*ORDER).where(A.c.id == article_id)).one()
    return (r[0], r[1], r[2])


def newest_ids(conn: Connection, spec: FeedSpec, now: datetime, limit: int) -> list[str]:
    q = sa.select(A.c.id).select_from(A)
    q = _member(q, spec).where(A.c.status == ArticleStatus.PUBLISHED.value, A.c.published <= now)
    q = q.order_by(A.c.published.desc(), A.c.id.desc()).limit(limit)
    return [r[0] for r in conn.execute(q)]


def load_by_ids(conn: Connection, store: Store, ids: Sequence[str]) -> list[Article]:
    out: list[Article] = []
    for i in range(0, len(ids), 500):
        out.extend(store.load_articles(conn, A.c.id.in_(list(ids[i : i + 500]))))
    return out


def stored_files(conn: Connection, spec: FeedSpec) -> dict[str, str]:
    """path -> fingerprint of the feed's files recorded by earlier builds."""
    cond = sa.or_(FF.c.path.like(f"{spec.dir}archive/%"), FF.c.path.in_(_current_paths(spec)))
    return dict(conn.execute(sa.select(FF.c.path, FF.c.fingerprint).where(cond)).all())


def stored_current(conn: Connection, spec: FeedSpec) -> dict[str, str]:
    cond = FF.c.path.in_(_current_paths(spec))
    return {r[0]: r[1] for r in conn.execute(sa.select(FF.c.path, FF.c.fingerprint).where(cond))}


def generations(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        q = sa.select(A.c.id, A.c.changed_generation).where(A.c.id.in_(list(ids[i : i + 500])))
        out.update({r[0]: int(r[1]) for r in conn.execute(q)})
    return out


def _current_paths(spec: FeedSpec) -> list[str]:
    page = [spec.dir + PAGE_NAME] if spec.page else []  # rendered with the current feed
    return [spec.path(f) for f in Format] + page


def feed_updated(conn: Connection, paths: Iterable[str]) -> dict[str, datetime | None]:
    return dict(
        conn.execute(sa.select(FF.c.path, FF.c.updated).where(FF.c.path.in_(list(paths)))).all()
    )


def save_files(
    conn: Connection, rows: Sequence[tuple[str, str, datetime | None]], written_at: datetime
) -> None:
    """Record (path, fingerprint, updated) for files just planned."""
    paths = [r[0] for r in rows]
    for i in range(0, len(paths), 500):
        conn.execute(sa.delete(FF).where(FF.c.path.in_(paths[i : i + 500])))
    if rows:
        conn.execute(
            sa.insert(FF),
            [
                {"path": p, "fingerprint": f, "updated": u, "written_at": written_at}
                for p, f, u in rows
            ],
        )


def recorded_paths(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(sa.select(FF.c.path).order_by(FF.c.path))]


def forget_files(conn: Connection, paths: Sequence[str]) -> None:
    for i in range(0, len(paths), 500):
        conn.execute(sa.delete(FF).where(FF.c.path.in_(list(paths[i : i + 500]))))
