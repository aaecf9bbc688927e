"""``[output] archives = false``: every feed is its newest ``items_per_feed`` articles,
no RFC 5005 archive page is written, and pages of earlier builds are removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from lxml import etree

from feedpub.feeds import build_feeds, feed_pool
from feedpub.feeds.queries import recorded_paths
from tests.conftest import Newsroom
from tests.test_feeds_incremental import NOW, SMALL, Room

ATOM = "{http://www.w3.org/2005/Atom}"


def _set_archives(room: Room, on: bool) -> None:
    text = room.nr.config_path.read_text()
    text = text.replace("archives = false\n", "").replace("archives = true\n", "")
    text = text.replace(
        "archive_page_size = 2\n", f"archive_page_size = 2\narchives = {str(on).lower()}\n"
    )
    room.nr.config_path.write_text(text, encoding="utf-8")
    room.config = room.nr.config()
    assert room.config.output.archives is on


@pytest.fixture
def room(newsroom: Newsroom) -> Iterator[Room]:
    """Feeds of 2 items, archive pages of 2, archives off."""
    text = newsroom.config_path.read_text()
    text = text.replace('[output]\ndir = "feeds"\nitems_per_feed = 5\n', SMALL)
    newsroom.config_path.write_text(text, encoding="utf-8")
    r = Room(newsroom)
    _set_archives(r, False)
    yield r
    r.store.close()


def _archive_files(room: Room) -> list[str]:
    return sorted(p for p in room.files() if "/archive/" in f"/{p}")


def _links(room: Room, rel_path: str) -> set[str]:
    root = etree.fromstring((room.out / rel_path).read_bytes())
    return {str(link.get("rel")) for link in root.iter(f"{ATOM}link")}


def test_each_feed_holds_only_its_newest_items(room: Room) -> None:
    for n in range(1, 8):
        room.add(n, beat="world" if n % 2 else "technology")
    room.publish(NOW)
    assert _archive_files(room) == []
    assert [e.title for e in room.entries("atom.xml")] == ["Story 7", "Story 6"]
    assert [e.title for e in room.entries("rss.xml")] == ["Story 7", "Story 6"]
    assert [e.title for e in room.entries("beats/world/atom.xml")] == ["Story 7", "Story 5"]
    feed = json.loads((room.out / "feed.json").read_bytes())
    assert [i["title"] for i in feed["items"]] == ["Story 7", "Story 6"]
    assert "next_url" not in feed  # no older page to chain to
    # RFC 5005 §4: no archive means no prev-archive link and no fh:archive marker.
    assert "prev-archive" not in _links(room, "atom.xml")
    assert b"prev-archive" not in (room.out / "rss.xml").read_bytes()
    with room.store.engine.connect() as conn:
        assert not [p for p in recorded_paths(conn) if "archive/" in p]


def test_turning_archives_off_removes_earlier_pages_and_on_brings_them_back(room: Room) -> None:
    _set_archives(room, True)
    for n in range(1, 8):
        room.add(n)
    room.publish(NOW)
    with_archives = room.files()
    pages = _archive_files(room)
    assert "archive/1/atom.xml" in pages and "prev-archive" in _links(room, "atom.xml")

    _set_archives(room, False)
    rep = room.publish(NOW + timedelta(minutes=1))
    assert _archive_files(room) == []
    assert set(pages) <= set(rep.removed)
    with room.store.engine.connect() as conn:
        assert not [p for p in recorded_paths(conn) if "archive/" in p]
    assert len(room.entries("atom.xml")) == 2

    _set_archives(room, True)
    room.publish(NOW + timedelta(minutes=2))
    assert room.files() == with_archives  # the same pages, byte for byte


def test_incremental_build_equals_a_full_one(room: Room) -> None:
    for n in range(1, 6):
        room.add(n, beat="world")
    room.publish(NOW)
    room.add(6, beat="world")
    rep = room.publish(NOW + timedelta(minutes=5))
    assert not rep.skipped and "beats/world/atom.xml" in rep.written
    assert [e.title for e in room.entries("beats/world/atom.xml")] == ["Story 6", "Story 5"]
    incremental = room.files()
    forced = build_feeds(
        room.config, room.store, now=NOW + timedelta(minutes=5), force=True, ping=False
    )
    assert forced.written == []  # same bytes: nothing rewritten
    assert room.files() == incremental
    again = build_feeds(room.config, room.store, now=NOW + timedelta(minutes=6), ping=False)
    assert again.skipped


def test_worker_processes_write_the_same_feeds(room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(1, 8):
        room.add(n, beat="world" if n % 3 else "technology")
    room.publish(NOW)
    alone = room.files()
    monkeypatch.setattr(feed_pool, "MIN_SLOTS", 1)
    monkeypatch.setattr(feed_pool, "workers", lambda: 2)
    build_feeds(room.config, room.store, now=NOW, force=True, ping=False)
    assert room.files() == alone
