"""The daemon's tick leaves a folder source out of the collect when the operating
system's file events (watchdog) saw no change in it since its last clean scan, and scans
it again on a change, after a rejection, and at least every ``rescan_every``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.collect import WATCHED
from feedpub.scheduler.daemon import Daemon
from feedpub.sources.watch import FolderWatcher
from feedpub.store import Store
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _article(slug: str, title: str) -> str:
    return f"---\ntitle: {title}\ndate: 2026-11-20 09:00\nslug: {slug}\n---\nBody of {slug}.\n"


def _source_status(store: Store) -> str:
    run = store.last_run("collect")
    assert run is not None
    [source] = run["summary"]["sources"]
    return str(source["status"])


def _titles(store: Store) -> set[str]:
    with store.read() as conn:
        return set(conn.execute(sa.select(s.articles.c.title)).scalars())


def _wait_for_event(watcher: FolderWatcher) -> None:
    deadline = time.monotonic() + 10
    while not watcher.pending() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watcher.pending(), "no file event arrived within 10 s"
    time.sleep(0.5)  # one write is several events (created, modified, closed): let them all in


@pytest.fixture
def daemon(newsroom: Newsroom) -> Iterator[tuple[Daemon, Newsroom, Store]]:
    newsroom.set_config('[schedule]\nrescan_every = "PT1H"\n')
    newsroom.write("kyiv.md", _article("kyiv", "Kyiv schools move underground"))
    store = newsroom.store()
    d = Daemon(newsroom.config(), store, clock=lambda: NOW)
    d.start(paused=True)
    assert d.watched.start(), "watchdog could not watch the content folder"
    try:
        yield d, newsroom, store
    finally:
        d.stop(timeout=10)
        store.close()


def test_an_unchanged_folder_is_not_read_and_a_change_is(
    daemon: tuple[Daemon, Newsroom, Store],
) -> None:
    d, room, store = daemon
    d.tick(NOW)  # the first tick knows nothing yet: it scans
    assert _source_status(store) == "ok"
    assert _titles(store) == {"Kyiv schools move underground"}
    # The scan's own reads (files opened and closed unwritten) are not changes.
    time.sleep(0.3)
    d.tick(NOW + timedelta(minutes=5))
    assert _source_status(store) == WATCHED

    room.write("odesa.md", _article("odesa", "Odesa port reopens"))
    _wait_for_event(d.watched.watcher)
    d.tick(NOW + timedelta(minutes=10))
    assert _source_status(store) == "ok"
    assert _titles(store) == {"Kyiv schools move underground", "Odesa port reopens"}
    assert (room.root / "feeds" / "rss.xml").read_text(encoding="utf-8").count("Odesa port") == 1

    # An edit in place and a deletion are changes too.
    time.sleep(0.3)
    d.tick(NOW + timedelta(minutes=15))
    assert _source_status(store) == WATCHED
    (room.content / "kyiv.md").unlink()
    _wait_for_event(d.watched.watcher)
    d.tick(NOW + timedelta(minutes=20))
    assert _source_status(store) == "ok"
    with store.read() as conn:
        status = conn.execute(
            sa.select(s.articles.c.status).where(s.articles.c.slug == "kyiv")
        ).scalar_one()
    assert status != "live"


def test_a_rejected_file_is_named_every_tick_and_rescan_every_bounds_a_missed_event(
    daemon: tuple[Daemon, Newsroom, Store],
) -> None:
    d, room, store = daemon
    room.write("bad.md", "---\ntitle: Bad\ndate: 2026-02-30\n---\nx\n")
    d.tick(NOW)
    first = store.last_run("collect")
    assert first is not None and not first["ok"]
    time.sleep(0.3)
    d.tick(NOW + timedelta(minutes=5))  # not skipped: its rejection is named again
    again = store.last_run("collect")
    assert again is not None and not again["ok"] and again["id"] != first["id"]
    assert _source_status(store) != WATCHED

    (room.content / "bad.md").unlink()
    _wait_for_event(d.watched.watcher)
    d.tick(NOW + timedelta(minutes=10))
    assert _source_status(store) == "ok"
    time.sleep(0.3)
    d.tick(NOW + timedelta(minutes=15))
    assert _source_status(store) == WATCHED
    # Whatever the events said, a source is scanned once rescan_every has passed.
    d.tick(NOW + timedelta(minutes=10, hours=1))
    assert _source_status(store) == "ok"


def test_without_a_running_watcher_every_tick_scans(newsroom: Newsroom) -> None:
    newsroom.write("kyiv.md", _article("kyiv", "Kyiv schools move underground"))
    store = newsroom.store()
    d = Daemon(newsroom.config(), store, clock=lambda: NOW)
    d.start(paused=True)  # paused: the watcher is not started
    try:
        d.tick(NOW)
        d.tick(NOW + timedelta(minutes=5))
        assert _source_status(store) == "ok"
    finally:
        d.stop(timeout=10)
        store.close()


def test_a_missing_folder_is_scanned_every_tick(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    w = FolderWatcher({"a": root / "missing", "b": root})
    assert w.start()
    try:
        assert w.unwatched == {"a"}
        assert w.take_changed() == {"a", "b"}  # nothing known before the first scan
        assert w.take_changed() == {"a"}
    finally:
        w.stop()
    assert w.take_changed() is None  # stopped: the caller scans everything
