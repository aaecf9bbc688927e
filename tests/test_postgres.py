"""The same sample newsroom on PostgreSQL: collect, build and a digest send give what
they give on SQLite (feeds byte for byte, the same ledger).

Runs by default against the PostgreSQL on 127.0.0.1:5432, each test in a database of
its own (the ``pg_url`` fixture); skips, saying why, when no server answers.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema
from feedpub.collect import collect
from feedpub.config import load_config
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.feeds import build_feeds
from feedpub.locks import lock_for
from feedpub.store import Store

SAMPLE = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _newsroom(root: Path, store_url: str) -> Path:
    shutil.copytree(SAMPLE / "content", root / "content")
    shutil.copytree(SAMPLE / "templates", root / "templates")
    text = (SAMPLE / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///feedpub.db"', f'url = "{store_url}"')
    (root / "config.toml").write_text(text, encoding="utf-8")
    assert load_config(root / "config.toml").store.url == store_url
    return root / "config.toml"


def _run(config_path: Path) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    config = load_config(config_path)
    store = Store(config.store_url)
    try:
        collect(config, store, now=NOW)
        build_feeds(config, store, now=NOW, ping=False)
        with store.begin() as conn:
            for i in range(5):
                subs.add(config, conn, f"reader{i}@example.com", newsletters=["daily"], now=NOW)
        report = send_newsletter(config, store, "daily", now=NOW)
        assert report.status == "sent" and report.sent == 5
        with store.read() as conn:
            ledger = sorted(
                (r.email, r.status)
                for r in conn.execute(
                    sa.select(schema.deliveries.c.email, schema.deliveries.c.status)
                )
            )
    finally:
        store.close()
    out = config.output_dir
    # Feeds only: the newsletter archive carries the store's own edition ids.
    files = {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.relative_to(out).as_posix().startswith("newsletters/")
    }
    return files, ledger


def test_postgres_gives_what_sqlite_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.setenv("FEEDPUB_SECRET", "test-secret")
    on_pg = _run(_newsroom(tmp_path / "pg", pg_url))
    on_sqlite = _run(_newsroom(tmp_path / "lite", "sqlite:///feedpub.db"))
    assert on_pg[1] == on_sqlite[1]
    assert on_pg[0].keys() == on_sqlite[0].keys()
    assert on_pg[0] == on_sqlite[0]


def test_postgres_daemon_lock_is_exclusive(pg_url: str) -> None:
    from feedpub.errors import LockedError

    engine = sa.create_engine(pg_url)
    try:
        first = lock_for(pg_url, "daemon", engine=engine)
        first.acquire()
        try:
            with pytest.raises(LockedError):
                lock_for(pg_url, "daemon", engine=engine).acquire()
        finally:
            first.release()
        lock_for(pg_url, "daemon", engine=engine).acquire()  # free again
    finally:
        engine.dispose()
