"""The article counts per feed that the store keeps by trigger (feedpub.feed_counts): they
follow every insert, move and delete on SQLite and PostgreSQL, an incremental build reads
them instead of counting the articles, a full build checks and mends them, and concurrent
writers on PostgreSQL never wait on them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import pytest
import sqlalchemy as sa

from feedpub import feed_counts
from feedpub import schema as s
from feedpub.collect import collect
from feedpub.feeds import build_feeds, queries
from feedpub.store import Store, set_meta
from feedpub.storecopy import copy_store
from tests.conftest import BASE_CONFIG, Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def story(n: int, *, beat: str | None = "technology", author: str = "Arjun Mehta") -> str:
    beat_line = f"beat: {beat}\n" if beat else ""
    return (
        f"---\ntitle: Story {n}\nauthor: {author}\ndate: 2026-11-{n % 28 + 1:02d} 09:00\n"
        f"{beat_line}---\n\nBody {n}.\n"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def room(newsroom: Newsroom, request: pytest.FixtureRequest) -> Iterator[Newsroom]:
    config = BASE_CONFIG.replace('default_beat = "world"\n', "")
    if request.param == "postgresql":
        config = config.replace("sqlite:///feedpub.db", request.getfixturevalue("pg_url"))
    newsroom.set_config(base=config)
    yield newsroom


def test_the_triggers_name_feeds_as_the_feeds_stage_does() -> None:
    from feedpub.feeds.model import FeedKind

    kinds = (FeedKind.SITE, FeedKind.BEAT, FeedKind.AUTHOR)
    assert tuple(f"{kind.value}:" for kind in kinds) == (
        feed_counts.SITE,
        feed_counts.BEAT,
        feed_counts.AUTHOR,
    )


def both(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """(the kept counts, the counts counted from the articles) in one read."""
    with store.read() as conn:
        kept, _rows = feed_counts.read(conn)
        return kept, feed_counts.exact(conn)


def publish(room: Newsroom, store: Store) -> None:
    """Collect the room's files, then build its feeds."""
    collect(room.config(), store, now=NOW)
    build_feeds(room.config(), store, now=NOW, ping=False)


def delta_rows(store: Store) -> int:
    with store.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(feed_counts.deltas)).scalar_one()
        )


def test_kept_counts_follow_inserts_moves_and_deletes(room: Newsroom) -> None:
    store = room.store()
    try:
        for n in range(1, 31):  # one collect, one bulk insert
            beat = (None, "technology", "world")[n % 3]
            room.write(f"{n:02d}.md", story(n, beat=beat, author=("Ana", "Ben")[n % 2]))
        collect(room.config(), store, now=NOW)
        kept, counted = both(store)
        assert counted == {
            "site:": 30,
            "beat:technology": 10,
            "beat:world": 10,
            "author:ana": 15,
            "author:ben": 15,
        }
        assert kept == counted

        # An article moves to another beat and to another author; one loses its beat.
        room.write("01.md", story(1, beat="world", author="Cleo"))
        room.write("02.md", story(2, beat=None, author="Ana"))
        collect(room.config(), store, now=NOW)
        kept, counted = both(store)
        assert counted["beat:world"] == 10 and counted["beat:technology"] == 9  # in 1, out 1
        assert counted["author:cleo"] == 1 and counted["author:ben"] == 14
        assert kept == counted

        # Rows deleted (the author links go with them, ON DELETE CASCADE).
        with store.begin() as conn:
            conn.execute(
                sa.delete(s.articles).where(s.articles.c.title.in_(["Story 3", "Story 4"]))
            )
        kept, counted = both(store)
        assert counted["site:"] == 28
        assert kept == counted
    finally:
        store.close()


def test_an_article_moved_out_of_a_beat_leaves_that_feed_on_the_next_build(
    room: Newsroom,
) -> None:
    store = room.store()
    try:
        for n in range(1, 4):
            room.write(f"{n:02d}.md", story(n, beat="world"))
        publish(room, store)
        world = room.config().output_dir / "beats/world/rss.xml"
        assert len(feedparser.parse(world.read_bytes()).entries) == 3

        room.write("02.md", story(2, beat="technology"))
        publish(room, store)
        titles = [e.title for e in feedparser.parse(world.read_bytes()).entries]
        assert titles and "Story 2" not in titles
        tech = room.config().output_dir / "beats/technology/rss.xml"
        assert [e.title for e in feedparser.parse(tech.read_bytes()).entries] == ["Story 2"]
    finally:
        store.close()


def test_an_incremental_build_reads_the_kept_counts_not_the_articles(room: Newsroom) -> None:
    store = room.store()
    try:
        for n in range(1, 6):
            room.write(f"{n:02d}.md", story(n))
        publish(room, store)
        room.write("06.md", story(6, beat="world"))
        collect(room.config(), store, now=NOW)

        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split()))

        sa.event.listen(store.engine, "before_cursor_execute", record)
        try:
            report = build_feeds(room.config(), store, now=NOW, ping=False)
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", record)
        assert "beats/world/rss.xml" in report.written
        grouped = [q for q in statements if "GROUP BY" in q]
        assert grouped, statements  # the counts were read...
        assert all("feed_count_deltas" in q for q in grouped), grouped  # ...from the kept rows
        assert not any("GROUP BY articles.beat" in q for q in statements)
    finally:
        store.close()


def test_a_build_folds_piled_up_count_rows(room: Newsroom, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "COMPACT_SLACK", 0)
    store = room.store()
    try:
        for n in range(1, 9):
            room.write(f"{n:02d}.md", story(n, beat=("world", "technology")[n % 2]))
        publish(room, store)  # full build: folded
        before = both(store)
        # A row per beat and author; the site's count is theirs summed (every article here
        # has a beat: no row of its own).
        assert delta_rows(store) == 3 and len(before[0]) == 4
        for n in range(1, 9):  # every article changes beat: a delta pair each
            room.write(f"{n:02d}.md", story(n, beat=("technology", "world")[n % 2]))
        collect(room.config(), store, now=NOW)
        assert delta_rows(store) > 3
        build_feeds(room.config(), store, now=NOW, ping=False)  # incremental: folded too
        kept, counted = both(store)
        assert kept == counted == before[0]  # four moved each way
        assert delta_rows(store) == 3
    finally:
        store.close()


def test_a_full_build_mends_counts_edited_by_hand(
    room: Newsroom, caplog: pytest.LogCaptureFixture
) -> None:
    store = room.store()
    try:
        for n in range(1, 5):
            room.write(f"{n:02d}.md", story(n))
        publish(room, store)
        with store.begin() as conn:
            # One feed's count lost, one made up.
            author = feed_counts.deltas.c.feed == "author:arjun-mehta"
            conn.execute(feed_counts.deltas.delete().where(author))
            conn.execute(feed_counts.deltas.insert(), [{"feed": "beat:world", "d": 7}])
        kept, counted = both(store)
        assert kept != counted

        with caplog.at_level(logging.WARNING, logger="feedpub.feeds"):
            build_feeds(room.config(), store, now=NOW, force=True, ping=False)
        warned = [r for r in caplog.records if "counts per feed differed" in r.getMessage()]
        assert len(warned) == 1
        assert warned[0].feeds == ["author:arjun-mehta", "beat:world"]  # type: ignore[attr-defined]
        kept, counted = both(store)
        assert kept == counted and counted["site:"] == 4 and counted["author:arjun-mehta"] == 4

        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="feedpub.feeds"):
            build_feeds(room.config(), store, now=NOW, force=True, ping=False)
        assert not [r for r in caplog.records if "differed" in r.getMessage()]
    finally:
        store.close()


def test_a_store_from_before_the_counts_gets_them_counted(room: Newsroom) -> None:
    store = room.store()
    for n in range(1, 7):
        room.write(f"{n:02d}.md", story(n, beat=(None, "world")[n % 2]))
    collect(room.config(), store, now=NOW)
    _, counted = both(store)
    with store.begin() as conn:  # as schema version 7 left it: no table, no triggers
        if store.is_sqlite:
            for t in ("articles", "article_authors"):
                for op in ("ins", "del", "upd"):
                    conn.exec_driver_sql(f"DROP TRIGGER feed_counts_{t}_{op}")
        else:  # the functions' triggers go with them
            conn.exec_driver_sql("DROP FUNCTION feedpub_count_articles CASCADE")
            conn.exec_driver_sql("DROP FUNCTION feedpub_count_article_authors CASCADE")
        conn.exec_driver_sql("DROP TABLE feed_count_deltas")
        set_meta(conn, "schema_version", "7")
    store.close()

    store = room.store()  # migrates
    try:
        assert both(store) == (counted, counted)
        room.write("07.md", story(7, beat="world"))  # and the triggers count from now on
        collect(room.config(), store, now=NOW)
        kept, again = both(store)
        assert kept == again and again["beat:world"] == counted["beat:world"] + 1
    finally:
        store.close()


def test_a_copied_store_counts_what_it_received(newsroom: Newsroom, pg_url: str) -> None:
    for n in range(1, 13):
        newsroom.write(f"{n:02d}.md", story(n, beat=("world", "technology", None)[n % 3]))
    source = newsroom.store()
    try:
        collect(newsroom.config(), source, now=NOW)
        kept, counted = both(source)
        assert kept == counted
        copy_store(source, pg_url)
    finally:
        source.close()
    target = Store(pg_url)
    try:
        assert both(target) == (counted, counted)
    finally:
        target.close()


def test_concurrent_writers_on_postgresql_do_not_wait_on_the_counts(
    newsroom: Newsroom, pg_url: str
) -> None:
    newsroom.set_config(base=BASE_CONFIG.replace("sqlite:///feedpub.db", pg_url))
    for n in range(1, 7):
        newsroom.write(f"{n:02d}.md", story(n, beat="world"))
    store = newsroom.store()
    try:
        collect(newsroom.config(), store, now=NOW)
        a = s.articles
        engine = sa.create_engine(pg_url)
        with engine.connect() as one, engine.connect() as two:
            one.begin()
            two.begin()
            # Each moves articles out of "world" (counted rows: site and the beats) and
            # holds its transaction open; the other must not wait for it.
            two.exec_driver_sql("SET LOCAL lock_timeout = '3s'")
            one.execute(sa.update(a).where(a.c.title == "Story 1").values(beat="technology"))
            two.execute(sa.update(a).where(a.c.title == "Story 2").values(beat="technology"))
            # A build's fold runs meanwhile (and commits): it must not lose the deltas of
            # the transactions still open, nor count them twice.
            with store.begin() as conn:
                feed_counts.compact(conn)
            done = threading.Event()

            def fold_again() -> None:
                with store.begin() as conn:
                    feed_counts.compact(conn)
                done.set()

            t = threading.Thread(target=fold_again)
            t.start()
            one.commit()
            t.join(10)
            assert done.is_set()
            two.commit()
        engine.dispose()
        kept, counted = both(store)
        assert counted["beat:world"] == 4 and counted["beat:technology"] == 2
        assert kept == counted
        with store.begin() as conn:
            feed_counts.compact(conn)
        assert both(store) == (counted, counted)
    finally:
        store.close()


def test_an_empty_store_counts_the_site_as_empty(room: Newsroom) -> None:
    store = room.store()
    try:
        assert both(store) == ({"site:": 0}, {"site:": 0})
    finally:
        store.close()
