"""The store: migrations, SQLite settings, the change generation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema
from feedpub.errors import ConfigError, StoreError
from feedpub.store import Store, get_meta, set_meta


def test_new_store_is_migrated_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.read() as conn:
        assert get_meta(conn, "schema_version") == str(schema.SCHEMA_VERSION)
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        tables = set(sa.inspect(conn).get_table_names())
    assert {
        "articles",
        "authors",
        "beats",
        "article_authors",
        "source_state",
        "deliveries",
    } <= tables
    store.close()
    # Opening again runs no migration twice and keeps the generation.
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as again:
        assert again.generation() == 0


def test_generation_bumps_in_the_callers_transaction(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(RuntimeError), store.begin() as conn:
        Store.bump_generation(conn)
        raise RuntimeError("rolled back")
    assert store.generation() == 0
    with store.begin() as conn:
        assert Store.bump_generation(conn) == 1
    assert store.generation() == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with Store(url) as store, store.begin() as conn:
        set_meta(conn, "schema_version", str(schema.SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer than this feedpub"):
        Store(url)


def test_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"store\.url: folder .*nope for the database") as ei:
        Store(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")
    assert ei.value.exit_code == 2


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.begin() as conn:
        conn.execute(
            sa.insert(schema.runs).values(kind="x", started=datetime(2026, 1, 1), summary={})
        )


def test_ensure_schema_adds_missing_tables_columns_and_indexes(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    old = sa.MetaData()
    sa.Table("things", old, sa.Column("id", sa.Integer, primary_key=True))
    new = sa.MetaData()
    sa.Table(
        "things",
        new,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("rank", sa.Integer, nullable=False, server_default="0"),
        sa.Index("ix_things_rank", "rank"),
    )
    sa.Table("others", new, sa.Column("id", sa.Integer, primary_key=True))
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(sa.text("INSERT INTO things (id) VALUES (1)"))
    for _ in range(2):  # idempotent
        with engine.begin() as conn:
            schema.ensure_schema(conn, new)
    with engine.connect() as conn:
        insp = sa.inspect(conn)
        assert {c["name"] for c in insp.get_columns("things")} == {"id", "label", "rank"}
        assert {i["name"] for i in insp.get_indexes("things")} == {"ix_things_rank"}
        assert "others" in insp.get_table_names()
        assert conn.execute(sa.text("SELECT rank FROM things")).scalar_one() == 0
    engine.dispose()


def test_an_older_store_gains_the_beat_order_index_and_beat_feeds_read_in_its_order(
    tmp_path: Path,
) -> None:
    """Schema 7: a beat feed's open end (and its whole sequence) is an index range scan,
    not every article of the beat read and sorted; a store made before gets the index."""
    from feedpub.feeds.model import FeedKind
    from feedpub.feeds.plan import FeedSpec
    from feedpub.feeds.queries import load_tail

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with Store(url) as store, store.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_articles_beat_order")
        set_meta(conn, "schema_version", "6")
    with Store(url) as store, store.read() as conn:
        assert get_meta(conn, "schema_version") == str(schema.SCHEMA_VERSION)
        names = {i["name"] for i in sa.inspect(conn).get_indexes("articles")}
        assert "ix_articles_beat_order" in names
        spec = FeedSpec(FeedKind.BEAT, "world", "World", "", "beats/world/", "https://x/", None)
        plans: list[str] = []

        @sa.event.listens_for(conn, "before_cursor_execute")
        def explain(c: object, cursor: object, statement: str, params: object, *_: object) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "beat" in statement:
                raw = conn.connection.driver_connection
                assert raw is not None
                rows = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
                plans.extend(str(r[-1]) for r in rows)

        t = datetime(2026, 1, 1, tzinfo=UTC)
        assert load_tail(conn, spec, t, (t, t, "")) == []
    assert any("ix_articles_beat_order" in p for p in plans), plans
    assert not any("TEMP B-TREE" in p for p in plans), plans
