"""`feedpub store migrate --to URL`: a newsroom moves from its SQLite file to PostgreSQL
with everything it holds (articles, feeds state, subscribers, editions, the ledger), all
or nothing, and carries on there as if nothing happened."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema as s
from feedpub.cli import main
from feedpub.store import Store

SAMPLE = Path(__file__).resolve().parents[1]


def _newsroom(root: Path) -> Path:
    shutil.copytree(SAMPLE / "content", root / "content")
    shutil.copytree(SAMPLE / "templates", root / "templates")
    shutil.copy(SAMPLE / "config.toml", root / "config.toml")
    return root / "config.toml"


def _cli(config: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["--config", str(config), *args])
    return r.exit_code, " ".join(r.output.split())  # however the console wraps


def _counts(url: str) -> dict[str, int]:
    store = Store(url)
    try:
        with store.read() as conn:
            return {
                t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in s.metadata.sorted_tables
            }
    finally:
        store.close()


def test_sqlite_newsroom_moves_to_postgres_and_carries_on(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDPUB_SECRET", "test-secret")
    config = _newsroom(tmp_path)
    assert _cli(config, "publish")[0] == 0
    for i in range(3):
        assert (
            _cli(config, "subscribers", "add", f"r{i}@example.com", "--newsletter", "daily")[0] == 0
        )
    code, out = _cli(config, "digest", "send", "daily", "--no-progress")
    assert code == 0, out
    before = _counts(f"sqlite:///{tmp_path / 'feedpub.db'}")
    assert before["articles"] > 20 and before["deliveries"] == 3

    code, out = _cli(config, "store", "migrate", "--to", pg_url)
    assert code == 0, out
    assert "copied" in out
    assert _counts(pg_url) == before

    # Point the newsroom at PostgreSQL: nothing is new, nothing is re-sent.
    text = config.read_text(encoding="utf-8").replace(
        'url = "sqlite:///feedpub.db"', f'url = "{pg_url}"'
    )
    config.write_text(text, encoding="utf-8")
    code, out = _cli(config, "publish")
    assert code == 0, out
    assert "nothing changed" in out
    code, out = _cli(config, "digest", "send", "daily", "--no-progress")
    assert code == 0, out
    assert _counts(pg_url)["deliveries"] == 3
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 3
    # New ids continue after the copied ones (sequences moved on).
    assert _cli(config, "subscribers", "add", "new@example.com", "--newsletter", "daily")[0] == 0


def test_a_target_that_is_not_empty_is_refused_and_left_alone(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDPUB_SECRET", "test-secret")
    config = _newsroom(tmp_path)
    assert _cli(config, "collect")[0] == 0
    assert _cli(config, "store", "migrate", "--to", pg_url)[0] == 0
    code, out = _cli(config, "store", "migrate", "--to", pg_url)
    assert code == 2
    assert "not empty" in out
    assert (
        _counts(pg_url)["articles"] == _counts(f"sqlite:///{tmp_path / 'feedpub.db'}")["articles"]
    )


def test_a_failed_copy_leaves_the_target_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row the target refuses (here: a column too long for a fixed-width column on the
    target is simulated by a CHECK constraint) rolls the whole copy back."""
    monkeypatch.setenv("FEEDPUB_SECRET", "test-secret")
    config = _newsroom(tmp_path)
    assert _cli(config, "collect")[0] == 0
    target = f"sqlite:///{tmp_path / 'target.db'}"
    Store(target).close()
    engine = sa.create_engine(target)
    with engine.begin() as conn:  # the target refuses one kind of row, late in the copy
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON article_authors "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    engine.dispose()
    code, out = _cli(config, "store", "migrate", "--to", target)
    assert code != 0
    assert "nothing kept" in out
    counts = _counts(target)
    assert counts["articles"] == 0 and counts["authors"] == 0


def test_migrating_onto_itself_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _newsroom(tmp_path)
    code, out = _cli(config, "store", "migrate", "--to", f"sqlite:///{tmp_path / 'feedpub.db'}")
    assert code == 2 and "another database" in out
