"""A full build renders the feeds in worker processes (feeds/feed_pool.py) and writes the
same files, the same build record and the same report as one process does."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.collect import collect
from feedpub.config import load_config
from feedpub.feeds import BuildReport, build_feeds, feed_pool
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.test_parse_pool import fill

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def build(root: Path, *, force: bool = False) -> tuple[BuildReport, dict[str, bytes], list[object]]:
    config = load_config(root / "config.toml")
    with Store(config.store_url) as store:
        collect(config, store, now=NOW)
        report = build_feeds(config, store, now=NOW, force=force, ping=False)
        with store.read() as conn:
            rows: list[object] = sorted(tuple(r) for r in conn.execute(sa.select(s.feed_files)))
    out = root / "feeds"
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return report, files, rows


def test_full_build_in_workers_writes_what_one_process_writes(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newsroom.set_config(
        base=newsroom.config_path.read_text().replace("items_per_feed = 5", "items_per_feed = 4")
    )
    fill(newsroom)
    other = tmp_path / "twin"
    shutil.copytree(newsroom.root, other, symlinks=True)
    monkeypatch.setattr(feed_pool, "MIN_SLOTS", 10**9)
    one = build(newsroom.root)
    calls: list[int] = []
    real = feed_pool.Pool.render

    def counted(self: feed_pool.Pool, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(feed_pool, "MIN_SLOTS", 1)
    monkeypatch.setattr(feed_pool, "workers", lambda: 2)
    monkeypatch.setattr(feed_pool.Pool, "render", counted)
    many = build(other)
    assert calls == [1]
    assert len(one[1]) > 20 and any("archive" in p for p in one[1])
    assert one[1] == many[1]
    assert one[2] == many[2]
    assert one[0].summary() == many[0].summary()
    assert one[0].written == many[0].written
    # --force renders everything again in workers: nothing changes.
    forced = build(other, force=True)
    assert calls == [1, 1]
    assert forced[1] == one[1]
