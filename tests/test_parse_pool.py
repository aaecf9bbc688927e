"""A large batch of content files is parsed on every core (sources/parse_pool.py), and
what gets published is the same, byte for byte, as when one process parses it all: the
same articles, rejections (with their line), drafts and warnings, the same feeds."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.collect import CollectReport, collect
from feedpub.config import load_config
from feedpub.feeds import build_feeds
from feedpub.sources import parse_pool
from feedpub.store import Store
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def fill(newsroom: Newsroom) -> None:
    start = datetime(2026, 10, 1, 8, tzinfo=UTC)
    for i in range(60):
        when = start + timedelta(hours=7 * i)
        newsroom.write(
            f"{i // 20}/story-{i:02d}.md",
            f"---\ntitle: Story {i} from the harbour\nauthor: Reporter {i % 4}\n"
            f"date: {when:%Y-%m-%dT%H:%M:%SZ}\ntags: [{'tech' if i % 3 else 'ukraine'}]\n"
            f"{'draft: true' if i % 17 == 5 else ''}\n---\n"
            f"## Part one\n\nThe *port* reopened [here](/post/x-{i}/) on day {i}.\n\n"
            f"| a | b |\n|---|---|\n| {i} | ~~{i + 1}~~ |\n",
        )
    newsroom.write("bad/broken-yaml.md", "---\ntitle: [unclosed\ndate: 2026-11-01\n---\nx\n")
    newsroom.write("bad/no-date.md", "---\ntitle: No date here\n---\nBody.\n")
    newsroom.write("bad/unknown-key.md", "---\ntitle: Odd key\ndate: 2026-11-02\nfoo: 1\n---\nB\n")
    newsroom.write(
        "pasted/one.txt",
        "Grid repairs before winter\n- Iruni Kalupahana\n- Nov 20, 2026\n- 2 min read\n\n"
        "Crews worked through the night.\n",
    )


def publish(root: Path) -> tuple[CollectReport, dict[str, bytes], list[tuple[object, ...]]]:
    config = load_config(root / "config.toml")
    store = Store(config.store_url)
    try:
        report = collect(config, store, now=NOW)
        build_feeds(config, store, now=NOW, ping=False)
        with store.read() as conn:
            rows = [
                tuple(r)
                for r in conn.execute(sa.select(s.articles).order_by(s.articles.c.id)).all()
            ]
            rows += [tuple(r) for r in conn.execute(sa.select(s.article_authors)).all()]
            rows += [tuple(r) for r in conn.execute(sa.select(s.source_files)).all()]
    finally:
        store.close()
    out = root / "feeds"
    feeds = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return report, feeds, sorted(rows, key=repr)


def twin(newsroom: Newsroom, tmp_path: Path) -> Path:
    """A copy of the newsroom (same files, same mtimes) with a store of its own."""
    other = tmp_path / "twin"
    shutil.copytree(newsroom.root, other, symlinks=True)
    return other


def count_pools(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each pool started (and its start method): the test must use one."""
    started: list[str] = []

    class Recording(ProcessPoolExecutor):
        def __init__(self, *args: object, **kwargs: object) -> None:
            started.append(kwargs["mp_context"].get_start_method())  # type: ignore[attr-defined]
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parse_pool, "ProcessPoolExecutor", Recording)
    return started


def same(a: CollectReport, b: CollectReport) -> None:
    assert a.counts == b.counts
    assert [str(e) for e in a.rejected] == [str(e) for e in b.rejected]
    assert [e.line for e in a.rejected] == [e.line for e in b.rejected]
    assert a.warnings == b.warnings


def test_pool_publishes_the_same_store_and_feeds_byte_for_byte(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(newsroom)
    other = twin(newsroom, tmp_path)
    monkeypatch.setattr(parse_pool, "MIN_PARALLEL", 10**9)
    serial = publish(newsroom.root)
    monkeypatch.setattr(parse_pool, "MIN_PARALLEL", 2)
    monkeypatch.setattr(parse_pool, "CHUNK", 7)  # results from many chunks, reassembled
    monkeypatch.setattr(parse_pool, "workers", lambda: 2)
    started = count_pools(monkeypatch)
    pooled = publish(other)
    assert len(started) == 1  # fork, or a fork server if an earlier test left a thread
    same(serial[0], pooled[0])
    assert serial[0].counts["new"] >= 50 and len(serial[0].rejected) == 2
    assert serial[1] and serial[1] == pooled[1]
    assert serial[2] == pooled[2]


def test_pool_started_beside_other_threads_gives_the_same_result(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the daemon other threads run: workers come from a fork server then."""
    fill(newsroom)
    other = twin(newsroom, tmp_path)
    monkeypatch.setattr(parse_pool, "MIN_PARALLEL", 10**9)
    serial = publish(newsroom.root)
    monkeypatch.setattr(parse_pool, "MIN_PARALLEL", 2)
    monkeypatch.setattr(parse_pool, "workers", lambda: 2)
    started = count_pools(monkeypatch)
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:
        pooled = publish(other)
    finally:
        stop.set()
        busy.join()
    assert started == ["forkserver"]
    same(serial[0], pooled[0])
    assert serial[1] == pooled[1]
    assert serial[2] == pooled[2]
