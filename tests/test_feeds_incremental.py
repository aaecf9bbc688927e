"""Incremental and atomic builds against a real SQLite store filled by collect."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from feedpub.collect import collect
from feedpub.config import Config
from feedpub.feeds import BuildReport, build_feeds
from feedpub.store import Store
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SMALL = """
[output]
dir = "feeds"
items_per_feed = 2
archive_page_size = 2
"""


def article(
    n: int,
    *,
    beat: str = "technology",
    body: str = "Body.",
    date: str | None = None,
    author: str = "Arjun Mehta",
) -> str:
    return f"""\
---
title: Story {n}
author: {author}
date: {date or f"2026-11-{n:02d} 09:00"}
beat: {beat}
summary: Summary {n}.
---

{body}
"""


class Room:
    def __init__(self, nr: Newsroom) -> None:
        self.nr = nr
        self.config: Config = nr.config()
        self.store: Store = Store(self.config.store_url)
        self.out: Path = self.config.output_dir

    def add(self, n: int, **kw: str) -> None:
        (self.nr.content / f"{n:02d}.md").write_text(article(n, **kw), encoding="utf-8")

    def publish(self, now: datetime = NOW, *, force: bool = False) -> BuildReport:
        collect(self.config, self.store, now=now)
        return build_feeds(self.config, self.store, now=now, force=force, ping=False)

    def files(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.out).as_posix(): p.read_bytes()
            for p in sorted(self.out.rglob("*"))
            if p.is_file()
        }

    def entries(self, rel: str = "atom.xml") -> list[feedparser.FeedParserDict]:
        return list(feedparser.parse((self.out / rel).read_bytes()).entries)


@pytest.fixture
def room(newsroom: Newsroom) -> Room:
    newsroom.config_path.write_text(
        newsroom.config_path.read_text().replace(
            '[output]\ndir = "feeds"\nitems_per_feed = 5\n', SMALL
        ),
        encoding="utf-8",
    )
    r = Room(newsroom)
    assert r.config.output.archive_page_size == 2
    yield r
    r.store.close()


def test_nothing_new_is_skipped_and_byte_identical(room: Room) -> None:
    for n in (1, 2, 3):
        room.add(n)
    first = room.publish()
    assert not first.skipped and "atom.xml" in first.written
    before = room.files()
    again = build_feeds(room.config, room.store, now=NOW + timedelta(minutes=5), ping=False)
    assert again.skipped and again.written == []
    mtimes = {p: p.stat().st_mtime_ns for p in room.out.rglob("*") if p.is_file()}
    forced = build_feeds(
        room.config, room.store, now=NOW + timedelta(hours=1), force=True, ping=False
    )
    # --force re-renders everything, but a file whose bytes are the same is left alone
    # (its Last-Modified stays, so If-Modified-Since readers get 304) and is not reported.
    assert not forced.skipped and forced.written == [] and forced.changed_feeds == []
    assert room.files() == before  # a rebuild with no content change: byte-identical
    assert {p: p.stat().st_mtime_ns for p in room.out.rglob("*") if p.is_file()} == mtimes


def test_new_article_rewrites_only_affected_feeds(room: Room) -> None:
    room.add(1, beat="technology")
    room.add(2, beat="world", author="Dilini Perera")
    room.publish()
    room.add(3, beat="technology")
    rep = room.publish(NOW + timedelta(minutes=5))
    dirs = {p.rsplit("/", 1)[0] if "/" in p else "" for p in rep.written}
    assert "beats/world" not in dirs and "authors/dilini-perera" not in dirs
    assert {"", "beats/technology", "authors/arjun-mehta"} <= dirs
    assert [e.title for e in room.entries("beats/technology/atom.xml")] == ["Story 3", "Story 1"]


def test_ids_stable_and_updated_moves_only_on_real_edit(room: Room) -> None:
    room.add(1)
    room.publish()
    (e1,) = room.entries()
    # Touching the file (no content change) changes nothing.
    p = room.nr.content / "01.md"
    os.utime(p, (p.stat().st_atime, p.stat().st_mtime + 100))
    rep = room.publish(NOW + timedelta(hours=1))
    assert rep.written == [] or rep.skipped
    (e2,) = room.entries()
    assert (e2.id, e2.updated) == (e1.id, e1.updated)
    # A real edit keeps the id and moves updated (never to the build time of an unrelated run).
    room.add(1, body="Body, corrected.")
    room.publish(NOW + timedelta(hours=2))
    (e3,) = room.entries()
    assert e3.id == e1.id
    assert datetime.fromisoformat(e3.updated) > datetime.fromisoformat(e1.updated)
    assert "corrected" in e3.content[0].value


def test_future_article_appears_when_its_time_comes(room: Room) -> None:
    room.add(1)
    room.add(2, date="2026-11-27 09:00")  # Asia/Colombo: 03:30 UTC on the 27th
    room.publish()
    assert [e.title for e in room.entries()] == ["Story 1"]
    # Before its time: nothing to do. When it comes, collect flips it and the feeds show it.
    assert room.publish(NOW + timedelta(hours=2)).skipped
    later = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    rep = room.publish(later)
    assert not rep.skipped and "atom.xml" in rep.written
    assert [e.title for e in room.entries()] == ["Story 2", "Story 1"]


def test_drafts_never_and_retractions_disappear(room: Room) -> None:
    room.add(1)
    room.add(2)
    (room.nr.content / "03.md").write_text(
        article(3).replace("summary:", "draft: true\nsummary:"), encoding="utf-8"
    )
    room.publish()
    assert [e.title for e in room.entries()] == ["Story 2", "Story 1"]
    (room.nr.content / "02.md").unlink()
    room.publish(NOW + timedelta(hours=1))
    text = "".join(b.decode() for b in room.files().values())
    assert "Story 2" not in text and "Story 3" not in text
    assert [e.title for e in room.entries()] == ["Story 1"]


def test_full_archive_pages_are_not_rewritten_by_new_articles(room: Room) -> None:
    for n in range(1, 7):  # six articles: pages 1-3 full (size 2)
        room.add(n)
        room.publish(NOW + timedelta(minutes=n))
    page2 = (room.out / "archive/2/atom.xml").read_bytes()
    room.add(7)
    room.add(8)
    rep = room.publish(NOW + timedelta(minutes=30))
    assert "archive/4/atom.xml" in rep.written  # a new full page
    assert not any(p.startswith(("archive/1/", "archive/2/", "archive/3/")) for p in rep.written)
    assert (room.out / "archive/2/atom.xml").read_bytes() == page2
    # An edit of an article on page 2 rewrites page 2 (and the feeds it is in), nothing older.
    room.add(3, body="Edited body.")
    rep = room.publish(NOW + timedelta(minutes=40))
    assert "archive/2/atom.xml" in rep.written
    assert "archive/1/atom.xml" not in rep.written and "archive/3/atom.xml" not in rep.written


def test_incremental_output_equals_a_full_rebuild(room: Room) -> None:
    for n in range(1, 6):
        room.add(n, beat="technology" if n % 2 else "world")
        room.publish(NOW + timedelta(minutes=n))
    room.add(2, beat="technology", body="Moved to technology.")  # beat reassigned
    (room.nr.content / "04.md").unlink()  # retracted
    room.publish(NOW + timedelta(minutes=10))
    incremental = room.files()
    build_feeds(room.config, room.store, now=NOW + timedelta(minutes=10), force=True, ping=False)
    assert room.files() == incremental


def test_crash_while_writing_keeps_the_previous_file(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    room.add(1)
    room.publish()
    before = room.files()
    room.add(2)
    collect(room.config, room.store, now=NOW + timedelta(minutes=1))

    def boom(src: str, dst: str) -> None:
        raise OSError("simulated crash during rename")

    monkeypatch.setattr("feedpub.atomicfile.os.replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        build_feeds(room.config, room.store, now=NOW + timedelta(minutes=1), ping=False)
    assert room.files() == before  # old bytes intact, no temp files left behind
    monkeypatch.undo()
    rep = build_feeds(room.config, room.store, now=NOW + timedelta(minutes=1), ping=False)
    assert not rep.skipped and "atom.xml" in rep.written  # the failed build was not recorded
    assert [e.title for e in room.entries()] == ["Story 2", "Story 1"]


def test_plan_hides_published_rows_dated_in_the_future(room: Room) -> None:
    """Even a row stored as "published" is hidden until its time; the build wakes up then."""
    from feedpub.types import Article, ArticleStatus

    room.add(1)
    room.publish()
    due = NOW + timedelta(hours=3)
    with room.store.begin() as conn:
        gen = room.store.bump_generation(conn)
        room.store.upsert_author(conn, "arjun-mehta", "Arjun Mehta")
        room.store.upsert_article(
            conn,
            Article(
                id="tag:news.example,2026:/post/early/",
                url="https://news.example/post/early/",
                slug="early",
                title="Embargoed story",
                authors=("Arjun Mehta",),
                author_slugs=("arjun-mehta",),
                beat="technology",
                tags=(),
                published=due,
                updated=due,
                summary="S",
                content_html="<p>B</p>",
                reading_minutes=1,
                status=ArticleStatus.PUBLISHED,
            ),
            source="test",
            source_key="early",
            content_hash="x" * 64,
            first_seen=NOW,
            generation=gen,
            insert=True,
        )
    rep = build_feeds(room.config, room.store, now=NOW + timedelta(hours=1), ping=False)
    assert not rep.skipped
    assert "Embargoed story" not in "".join(b.decode() for b in room.files().values())
    assert build_feeds(room.config, room.store, now=NOW + timedelta(hours=2), ping=False).skipped
    rep = build_feeds(room.config, room.store, now=due, ping=False)  # no generation bump
    assert not rep.skipped and "beats/technology/atom.xml" in rep.written
    assert [e.title for e in room.entries()] == ["Embargoed story", "Story 1"]


def test_config_change_rebuilds_every_feed(room: Room) -> None:
    room.add(1)
    room.publish()
    text = room.nr.config_path.read_text().replace('title = "Test Times"', 'title = "Test Post"')
    room.nr.config_path.write_text(text, encoding="utf-8")
    room.config = room.nr.config()
    rep = build_feeds(room.config, room.store, now=NOW, ping=False)
    assert not rep.skipped
    assert {"rss.xml", "beats/world/atom.xml", "authors/arjun-mehta/feed.json"} <= set(rep.written)
    assert "<title>Test Post</title>" in (room.out / "rss.xml").read_text()


def test_archive_pages_removed_when_a_feed_shrinks(room: Room) -> None:
    for n in range(1, 5):
        room.add(n, beat="world")
        room.publish(NOW + timedelta(minutes=n))
    assert (room.out / "beats/world/archive/2/atom.xml").is_file()
    for n in (1, 2):
        room.add(n, beat="technology")
    rep = room.publish(NOW + timedelta(minutes=10))
    assert "beats/world/archive/1/rss.xml" in rep.removed
    assert not (room.out / "beats/world/archive").exists() or not any(
        (room.out / "beats/world/archive").rglob("*.xml")
    )
    assert [e.title for e in room.entries("beats/world/atom.xml")] == ["Story 4", "Story 3"]


def test_feeds_of_a_removed_beat_are_deleted(room: Room) -> None:
    room.add(1, beat="russia-ukraine-war")
    room.add(2, beat="technology")
    room.publish()
    assert (room.out / "beats/russia-ukraine-war/rss.xml").is_file()
    text = room.nr.config_path.read_text()
    start = text.index('[[beats]]\nslug = "russia-ukraine-war"')
    end = text.index("[[beats]]", start + 1)
    room.nr.config_path.write_text(text[:start] + text[end:], encoding="utf-8")
    room.config = room.nr.config()
    rep = room.publish(NOW + timedelta(minutes=1))
    assert "beats/russia-ukraine-war/rss.xml" in rep.removed
    assert not (room.out / "beats/russia-ukraine-war/rss.xml").exists()
    assert (room.out / "beats/technology/rss.xml").is_file()
    index = (room.out / "index.html").read_text()
    assert "russia-ukraine-war" not in index


def test_builds_of_one_store_take_turns(room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second build (another process: the daemon's tick, a manual build) waits for the
    first to finish instead of racing it; past the wait it gives up clearly."""
    import threading

    from feedpub.errors import LockedError
    from feedpub.feeds import build as build_mod
    from feedpub.locks import lock_for

    room.add(1)
    collect(room.config, room.store, now=NOW)
    held = lock_for(room.config.store_url, "build")
    held.acquire()  # another builder is at work
    done: list[BuildReport] = []
    t = threading.Thread(
        target=lambda: done.append(build_feeds(room.config, room.store, now=NOW, ping=False))
    )
    t.start()
    t.join(0.5)
    assert t.is_alive() and not done and not (room.out / "atom.xml").exists()
    held.release()
    t.join(30)
    assert done and "atom.xml" in done[0].written
    # Held for longer than the wait: a clear error, nothing written.
    monkeypatch.setattr(build_mod, "BUILD_LOCK_WAIT", 0.1)
    held.acquire()
    try:
        with pytest.raises(LockedError, match="build is already running"):
            build_feeds(room.config, room.store, now=NOW, force=True, ping=False)
    finally:
        held.release()


def test_a_wiped_output_folder_is_rebuilt_without_force(room: Room) -> None:
    """An operator deletes feeds/ (a fresh deploy): the next build must not say 'nothing
    changed' while the site has no feeds."""
    import shutil

    room.add(1)
    room.publish()
    before = room.files()
    shutil.rmtree(room.out)
    rep = build_feeds(room.config, room.store, now=NOW, ping=False)
    assert not rep.skipped
    assert room.files() == before
    # ...and the tick after that is the O(1) no-op again.
    assert build_feeds(room.config, room.store, now=NOW, ping=False).skipped


def test_an_empty_newsroom_still_settles_to_a_no_op(room: Room) -> None:
    assert not build_feeds(room.config, room.store, now=NOW, ping=False).skipped
    assert build_feeds(room.config, room.store, now=NOW, ping=False).skipped


def test_a_beat_with_no_article_yet_is_dated_when_the_store_began(room: Room) -> None:
    """Not 1970 (the W3C validator's 'implausible date'), and stable across rebuilds."""
    from feedpub.store import get_meta

    room.add(1)  # technology only: "world" has no article yet
    room.publish()
    with room.store.read() as conn:
        created = datetime.fromisoformat(get_meta(conn, "created") or "")
    world = feedparser.parse((room.out / "beats/world/atom.xml").read_bytes())
    assert world.entries == []
    updated = datetime.fromisoformat(world.feed.updated)
    assert updated == created and updated.year >= 2026
    before = room.files()
    build_feeds(room.config, room.store, now=NOW, force=True, ping=False)
    assert room.files() == before


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_feeds_article_count_is_counted_from_the_store(
    newsroom: Newsroom, backend: str, request: pytest.FixtureRequest
) -> None:
    """The counts the build compares (feeds.queries.slot_counts), counted and as the store
    keeps them: the site's is every article, with or without a beat; each beat's and each
    author's their own."""
    import sqlalchemy as sa

    from feedpub import schema
    from feedpub.feeds.queries import slot_counts
    from tests.conftest import BASE_CONFIG

    config = BASE_CONFIG.replace('default_beat = "world"\n', "")
    if backend == "postgresql":
        config = config.replace("sqlite:///feedpub.db", request.getfixturevalue("pg_url"))
    newsroom.set_config(base=config)
    newsroom.write("a.md", "---\ntitle: A\nauthor: Ana\ndate: 2026-11-01\nbeat: world\n---\nA.\n")
    newsroom.write("b.md", "---\ntitle: B\nauthor: Ben\ndate: 2026-11-02\nbeat: world\n---\nB.\n")
    newsroom.write("c.md", "---\ntitle: C\ndate: 2026-11-03\ntags: [tech]\n---\nC.\n")
    newsroom.write("d.md", "---\ntitle: D\nauthor: Ana\ndate: 2026-11-04\n---\nNo beat.\n")
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    with store.read() as conn:
        counts, _rows = slot_counts(conn, exact=True)
        kept, _rows = slot_counts(conn, exact=False)
        beats = conn.execute(sa.select(schema.articles.c.beat)).scalars().all()
    store.close()
    assert None in beats and len(beats) == 4  # d.md has no beat
    assert kept == counts  # the store's own counts (feed_counts) agree with a count
    assert counts == {
        "site:": 4,
        "beat:world": 2,
        "beat:technology": 1,
        "author:ana": 2,
        "author:ben": 1,
    }
