"""An author's feed is read in archive order from the author links' own copy of the
article's key (article_authors.first_seen, .published; ix_article_authors_order): every
writer keeps the copy equal to the article's, a store from before gets it filled, and the
open end of an author's feed is an index range, not a lookup of each of their articles."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.collect import collect
from feedpub.config import Config
from feedpub.feeds import build_feeds
from feedpub.store import Store, set_meta
from feedpub.types import Article, ArticleStatus
from tests.conftest import BASE_CONFIG, Newsroom
from tests.test_feeds_incremental import NOW, SMALL


def story(n: int, *, day: int | None = None, authors: str = "Ana") -> str:
    return (
        f"---\ntitle: Story {n}\nauthor: [{authors}]\n"
        f"date: 2026-11-{day or n:02d} 09:00\nbeat: world\n---\n\nBody {n}.\n"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def room(newsroom: Newsroom, request: pytest.FixtureRequest) -> Iterator[Newsroom]:
    config = BASE_CONFIG.replace('[output]\ndir = "feeds"\nitems_per_feed = 5\n', SMALL)
    if request.param == "postgresql":
        config = config.replace("sqlite:///feedpub.db", request.getfixturevalue("pg_url"))
    newsroom.set_config(base=config)
    yield newsroom


def mismatched_links(store: Store) -> list[tuple[str, str]]:
    """Author links whose key is not their article's (or is missing)."""
    a, aa = s.articles, s.article_authors
    q = (
        sa.select(aa.c.article_id, aa.c.author_slug)
        .join(a, a.c.id == aa.c.article_id)
        .where(
            sa.or_(
                aa.c.first_seen.is_(None),
                aa.c.published.is_(None),
                aa.c.first_seen != a.c.first_seen,
                aa.c.published != a.c.published,
            )
        )
    )
    with store.read() as conn:
        return [(r[0], r[1]) for r in conn.execute(q)]


def link_count(store: Store) -> int:
    with store.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(s.article_authors)).scalar_one()
        )


def author_files(config: Config) -> dict[str, bytes]:
    out = config.output_dir
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted((out / "authors").rglob("*"))
        if p.is_file()
    }


def test_every_writer_keeps_the_links_key_equal_to_the_articles(room: Newsroom) -> None:
    store = room.store()
    try:
        for n in range(1, 9):
            room.write(f"{n:02d}.md", story(n, authors="Ana, Ben" if n % 2 else "Ana"))
        collect(room.config(), store, now=NOW)
        assert link_count(store) == 12 and mismatched_links(store) == []

        # Edits: a date moved (published changes), an author added and one dropped.
        room.write("03.md", story(3, day=20, authors="Ana"))
        room.write("04.md", story(4, authors="Ana, Cleo"))
        collect(room.config(), store, now=NOW + timedelta(hours=1))
        assert link_count(store) == 12 and mismatched_links(store) == []

        # The one-article writer (upstream sources): a new article, then the same one moved.
        article = Article(
            id="wire-1",
            url="https://news.example/post/wire-1/",
            slug="wire-1",
            title="Wire 1",
            authors=("Ana", "Ben"),
            author_slugs=("ana", "ben"),
            beat="world",
            tags=(),
            published=NOW - timedelta(days=3),
            updated=NOW - timedelta(days=3),
            summary="",
            content_html="<p>Wire.</p>",
            reading_minutes=1,
            status=ArticleStatus.PUBLISHED,
        )
        moved = replace(article, published=NOW - timedelta(days=1))
        for generation, version in enumerate((article, moved), start=10):
            with store.begin() as conn:
                store.upsert_article(
                    conn,
                    version,
                    source="wire",
                    source_key="1",
                    content_hash=str(generation),
                    first_seen=NOW,
                    generation=generation,
                    insert=version is article,
                )
        assert link_count(store) == 14 and mismatched_links(store) == []
    finally:
        store.close()


def test_a_store_from_before_gets_its_links_keys_filled(room: Newsroom) -> None:
    store = room.store()
    for n in range(1, 6):
        room.write(f"{n:02d}.md", story(n, authors="Ana, Ben"))
    collect(room.config(), store, now=NOW)
    with store.begin() as conn:  # as schema version 8 left the rows
        conn.execute(sa.update(s.article_authors).values(first_seen=None, published=None))
        set_meta(conn, "schema_version", "8")
    assert len(mismatched_links(store)) == 10
    store.close()
    store = room.store()  # migrates
    try:
        assert link_count(store) == 10 and mismatched_links(store) == []
    finally:
        store.close()


def test_an_author_feed_built_step_by_step_equals_a_full_rebuild(room: Newsroom) -> None:
    """Articles arriving, one moved back in time and one to another author: each
    incremental build of the author's feeds equals a build from scratch."""
    config = room.config()
    store = room.store()
    try:
        for step, (name, text) in enumerate(
            [
                ("01.md", story(1)),
                ("02.md", story(2)),
                ("03.md", story(3)),
                ("04.md", story(4)),
                ("05.md", story(5)),
                ("02.md", story(2, day=25)),  # its date moved: its slot stays (first_seen)
                ("03.md", story(3, authors="Ben")),  # leaves Ana's feed
                ("06.md", story(6)),
            ]
        ):
            room.write(name, text)
            now = NOW + timedelta(minutes=step)
            collect(config, store, now=now)
            build_feeds(config, store, now=now, ping=False)
            incremental = author_files(config)
            shutil.rmtree(config.output_dir)
            build_feeds(config, store, now=now, force=True, ping=False)
            full = author_files(config)
            assert incremental == full, f"after writing {name} (step {step})"
        assert "authors/ana/archive/1/rss.xml" in full
        assert b"Story 3" not in full["authors/ana/rss.xml"]
    finally:
        store.close()


def test_an_author_feeds_open_end_is_an_index_range(newsroom: Newsroom) -> None:
    from feedpub.feeds import queries
    from feedpub.feeds.plan import feed_specs

    store = newsroom.store()
    try:
        newsroom.write("01.md", story(1))
        collect(newsroom.config(), store, now=NOW)
        with store.read() as conn:
            spec = next(
                sp for sp in feed_specs(newsroom.config(), queries.load_authors(conn))
                if sp.ident == "author:ana"
            )  # fmt: skip
            captured: list[tuple[str, object]] = []

            def record(
                _c: object, _cur: object, statement: str, params: object, *_a: object
            ) -> None:
                captured.append((statement, params))

            sa.event.listen(store.engine, "before_cursor_execute", record)
            try:
                tail = queries.load_tail(conn, spec, NOW, (NOW - timedelta(days=90),) * 2 + ("",))
            finally:
                sa.event.remove(store.engine, "before_cursor_execute", record)
            assert [slot.id for slot, _key in tail]  # Story 1
            [(statement, params)] = captured
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()  # type: ignore[arg-type]
        details = " ".join(str(row[-1]) for row in plan)
        assert "ix_article_authors_order" in details, details
        assert "TEMP B-TREE" not in details, details  # no sort: read in index order
    finally:
        store.close()
