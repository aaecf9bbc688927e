"""The daemon's tick leaves a folder source out of the collect when the operating
system's file events (watchdog) saw no change in it since its last clean scan, and scans
it again on a change, after a rejection, and at least every ``rescan_every``."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.collect import WATCHED, collect
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


def _file_rows(store: Store) -> dict[str, int]:
    """Each source's recorded file stats rows."""
    f = s.source_files
    with store.read() as conn:
        q = sa.select(f.c.source, sa.func.count()).group_by(f.c.source)
        return {str(name): int(n) for name, n in conn.execute(q)}


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
        # nothing known before the first scan: all of both
        assert w.take_changes() == {"a": None, "b": None}
        assert w.take_changes() == {"a": None}
    finally:
        w.stop()
    assert w.take_changes() is None  # stopped: the caller scans everything


# Only the directories a change touched are listed again --------------------------------


@pytest.fixture
def archive(newsroom: Newsroom) -> Iterator[tuple[Daemon, Newsroom, Store]]:
    """A daemon on a folder kept in subfolders by month, after its first (full) scan."""
    newsroom.set_config('[schedule]\nrescan_every = "PT1H"\n')
    for month in ("01", "02", "03"):
        newsroom.write(f"2026/{month}/story-{month}.md", _article(f"s{month}", f"Story {month}"))
    store = newsroom.store()
    d = Daemon(newsroom.config(), store, clock=lambda: NOW)
    d.start(paused=True)
    assert d.watched.start(), "watchdog could not watch the content folder"
    try:
        d.tick(NOW)
        assert _source_status(store) == "ok"
        time.sleep(0.3)
        yield d, newsroom, store
    finally:
        d.stop(timeout=10)
        store.close()


def _listed_during_tick(
    d: Daemon, room: Newsroom, when: datetime, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The content folders the tick's collect listed (relative, sorted)."""
    from feedpub.sources import walk as walk_module

    listed: list[str] = []
    real_scandir = os.scandir
    content = os.path.realpath(room.content)

    def scandir(path: str) -> object:
        full = os.path.realpath(path)
        if full == content or full.startswith(content + os.sep):
            listed.append(os.path.relpath(full, content).replace(os.sep, "/"))
        return real_scandir(path)

    with monkeypatch.context() as m:
        m.setattr(walk_module.os, "scandir", scandir)
        d.tick(when)
    return sorted(listed)


def _live(store: Store) -> dict[str, str]:
    """slug -> source file of every article not retracted."""
    a = s.articles
    with store.read() as conn:
        rows = conn.execute(sa.select(a.c.slug, a.c.source_key).where(a.c.status != "retracted"))
        return {slug: key for slug, key in rows}


def test_a_new_file_lists_only_its_own_subfolder(
    archive: tuple[Daemon, Newsroom, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, room, store = archive
    room.write("2026/02/late.md", _article("late", "A late story"))
    _wait_for_event(d.watched.watcher)
    listed = _listed_during_tick(d, room, NOW + timedelta(minutes=5), monkeypatch)
    assert listed == ["2026/02"]
    assert _source_status(store) == "ok"
    assert _titles(store) == {"Story 01", "Story 02", "Story 03", "A late story"}
    assert (room.root / "feeds" / "rss.xml").read_text(encoding="utf-8").count("A late story") == 1
    time.sleep(0.3)
    d.tick(NOW + timedelta(minutes=10))  # and the next quiet tick leaves the folder out
    assert _source_status(store) == WATCHED


def test_an_edit_and_a_deletion_in_subfolders_are_collected_listing_only_those(
    archive: tuple[Daemon, Newsroom, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, room, store = archive
    room.write("2026/01/story-01.md", _article("s01", "Story 01, corrected"))
    (room.content / "2026" / "03" / "story-03.md").unlink()
    _wait_for_event(d.watched.watcher)
    listed = _listed_during_tick(d, room, NOW + timedelta(minutes=5), monkeypatch)
    assert listed == ["2026/01", "2026/03"]
    assert _titles(store) >= {"Story 01, corrected", "Story 02"}
    assert set(_live(store)) == {"s01", "s02"}  # the deleted story is retracted


def test_a_file_moved_between_subfolders_lists_both(
    archive: tuple[Daemon, Newsroom, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, room, store = archive
    os.rename(room.content / "2026/01/story-01.md", room.content / "2026/02/story-01.md")
    _wait_for_event(d.watched.watcher)
    listed = _listed_during_tick(d, room, NOW + timedelta(minutes=5), monkeypatch)
    assert listed == ["2026/01", "2026/02"]
    assert _live(store) == {
        "s01": "2026/02/story-01.md",
        "s02": "2026/02/story-02.md",
        "s03": "2026/03/story-03.md",
    }


def test_a_new_subfolder_makes_the_tick_scan_the_whole_source(
    archive: tuple[Daemon, Newsroom, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, room, store = archive
    room.write("2026/04/april.md", _article("april", "April story"))
    _wait_for_event(d.watched.watcher)
    listed = _listed_during_tick(d, room, NOW + timedelta(minutes=5), monkeypatch)
    assert listed == [".", "2026", "2026/01", "2026/02", "2026/03", "2026/04"]
    assert "April story" in _titles(store)
    # The new subfolder is in the listing kept for the next change.
    room.write("2026/04/april-2.md", _article("april-2", "Second April story"))
    _wait_for_event(d.watched.watcher)
    listed = _listed_during_tick(d, room, NOW + timedelta(minutes=10), monkeypatch)
    assert listed == ["2026/04"]
    assert "Second April story" in _titles(store)


def test_file_events_name_the_directories_they_change(tmp_path: object) -> None:
    from pathlib import Path

    from watchdog.events import (
        DirCreatedEvent,
        DirDeletedEvent,
        DirModifiedEvent,
        DirMovedEvent,
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileMovedEvent,
    )

    from feedpub.sources.watch import _changed_dirs

    root = str(Path(str(tmp_path)) / "content")
    j = os.path.join
    assert _changed_dirs(root, FileCreatedEvent(j(root, "a.md"))) == [""]
    assert _changed_dirs(root, FileClosedEvent(j(root, "2026", "01", "a.md"))) == ["2026/01/"]
    assert _changed_dirs(root, FileDeletedEvent(j(root, "x", "a.md"))) == ["x/"]
    assert _changed_dirs(root, FileMovedEvent(j(root, "x", ".a.md.tmp"), j(root, "y", "a.md"))) == [
        "x/",
        "y/",
    ]
    assert _changed_dirs(root, DirModifiedEvent(j(root, "x"))) == ["x/"]
    assert _changed_dirs(root, DirModifiedEvent(root)) == [""]
    # A directory that comes, goes or moves: its subtree is unknown, scan everything.
    assert _changed_dirs(root, DirCreatedEvent(j(root, "new"))) is None
    assert _changed_dirs(root, DirDeletedEvent(j(root, "x"))) is None
    assert _changed_dirs(root, DirMovedEvent(j(root, "x"), j(root, "y"))) is None
    # A path the watcher does not understand (outside the folder): scan everything.
    assert _changed_dirs(root, FileCreatedEvent(j(str(tmp_path), "elsewhere.md"))) is None


def test_after_another_processs_collect_a_deleted_file_is_still_retracted(
    archive: tuple[Daemon, Newsroom, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """File events vouch for the folders, not for what another process's collect did to
    the store: one that rejected an edit keeps the story live without its file's stats,
    and when the file is then deleted the daemon must still find and retract it."""
    d, room, store = archive
    room.write("2026/03/story-03.md", "---\ntitle: Broken\ndate: 2026-02-30\n---\nx\n")
    other = collect(room.config(), store, now=NOW + timedelta(minutes=1))  # `feedpub collect`
    assert [e.source for e in other.rejected] == ["2026/03/story-03.md"]
    assert set(_live(store)) == {"s01", "s02", "s03"}  # the last good version stays
    (room.content / "2026" / "03" / "story-03.md").unlink()
    _wait_for_event(d.watched.watcher)
    listed = _listed_during_tick(d, room, NOW + timedelta(minutes=5), monkeypatch)
    assert listed == ["2026/03"]
    assert set(_live(store)) == {"s01", "s02"}


def test_a_tick_whose_collect_failed_scans_the_whole_source_next(
    archive: tuple[Daemon, Newsroom, Store],
) -> None:
    d, room, _store = archive
    room.write("2026/02/late.md", _article("late", "A late story"))
    _wait_for_event(d.watched.watcher)
    assert d.watched.skip(NOW + timedelta(minutes=5)) == frozenset()
    [hint] = d.watched.hints().values()
    assert "2026/02/" not in hint.unchanged and "2026/01/" in hint.unchanged
    # No collected(): the collect raised. The changes it took must not be forgotten.
    assert d.watched.skip(NOW + timedelta(minutes=10)) == frozenset()
    assert d.watched.hints() == {}


def _state(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with store.read() as conn:
        a = s.articles
        articles = conn.execute(
            sa.select(a.c.id, a.c.source_key, a.c.url, a.c.status, a.c.content_hash).order_by(
                a.c.id
            )
        ).all()
        f = s.source_files
        files = conn.execute(sa.select(f.c.path, f.c.size, f.c.mtime_ns).order_by(f.c.path)).all()
    return [tuple(r) for r in articles], [tuple(r) for r in files]


def test_random_changes_in_subfolders_end_as_a_full_collect_does(
    daemon: tuple[Daemon, Newsroom, Store], tmp_path: Path
) -> None:
    """Files written, edited, moved between subfolders, deleted, broken and mended, in
    random order: after every tick (which lists only the subfolders the watcher saw
    change) the store holds what a full collect of the same files into a second store
    holds, and the tick counts what it counts."""
    d, room, store = daemon
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    config = room.config()
    rng = random.Random(5)
    folders = ["a/", "a/b/", "c/", "e/"]
    titles = [f"Title {i}" for i in range(8)]  # few: some files share a URL
    for n, folder in enumerate(folders):
        room.write(f"{folder}f{n}.md", _article(f"f{n}", titles[n]))
    t = NOW
    d.tick(t)
    collect(config, reference, now=t)
    hinted = counted = 0
    try:
        for step in range(16):
            t += timedelta(minutes=5)
            existing = sorted(str(p.relative_to(room.content)) for p in room.content.rglob("*.md"))
            op = rng.choice(["new", "new", "edit", "move", "delete", "break"])
            rel = rng.choice(existing) if existing else "a/x.md"
            if op == "new" or not existing:
                slug = f"n{step}"
                room.write(f"{rng.choice(folders)}{slug}.md", _article(slug, rng.choice(titles)))
            elif op == "edit":
                room.write(rel, _article(f"e{step}", rng.choice(titles)))
            elif op == "move":
                to = room.content / f"{rng.choice(folders)}m{step}.md"
                (room.content / rel).rename(to)
            elif op == "delete":
                (room.content / rel).unlink()
            else:
                room.write(rel, "---\ntitle: [broken\n---\n")
            _wait_for_event(d.watched.watcher)
            rows = _file_rows(store)
            d.tick(t)
            hinted += bool(d.watched.hints())
            for name, hint in d.watched.hints().items():  # the count the tick took on trust
                if hint.no_orphans:
                    assert hint.listed_files == rows.get(name, 0), (step, op, name)
                    counted += 1
            report = collect(config, reference, now=t)
            assert _state(store) == _state(reference), (step, op, rel)
            run = store.last_run("collect")
            assert run is not None and run["summary"]["counts"] == report.counts, (step, op)
    finally:
        reference.close()
    assert hinted  # some ticks listed only the subfolders that changed
    assert counted  # and some took the store's row count from the last clean scan
