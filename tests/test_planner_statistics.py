"""PostgreSQL's planner statistics follow the collect's bulk writes (feedpub.planner_stats).

A store that grew from nothing to thousands of articles in one collect must not look
empty to the planner at the next query: the folder's retraction check then compared every
stored article with every recorded file (3.3 s at 10,000 articles, minutes at 100,000).
The machines' PostgreSQL runs with autovacuum off, so only feedpub's own ANALYZE can make
these statistics current.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from feedpub import collect as collect_mod
from feedpub import collect_stream, planner_stats
from feedpub.collect import collect
from feedpub.config import load_config
from feedpub.store import Store
from feedpub.storecopy import copy_store

from .conftest import BASE_CONFIG, Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _article(i: int) -> str:
    return (
        f"---\ntitle: Story {i}\nauthor: Ana Reporter\ndate: 2026-11-{1 + i % 20:02d}T08:00:00Z\n"
        f"---\nThe council met about item {i}.\n"
    )


def _write(newsroom: Newsroom, first: int, n: int) -> None:
    for i in range(first, first + n):
        (newsroom.root / "content" / f"story-{i:04d}.md").write_text(_article(i), encoding="utf-8")


def _reltuples(url: str, *tables: str) -> dict[str, float]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:t)"),
                {"t": list(tables)},
            ).all()
    finally:
        engine.dispose()
    return {str(name): float(n) for name, n in rows}


def _on_postgres(newsroom: Newsroom, url: str) -> Store:
    newsroom.set_config(base=BASE_CONFIG.replace("sqlite:///feedpub.db", url))
    config = load_config(newsroom.config_path)
    assert config.store_url == url
    return Store(url)


@pytest.mark.parametrize(
    ("reltuples", "modified", "written", "expected"),
    [
        (-1.0, 0, 51, True),  # never analyzed, 51 rows just written
        (-1.0, 0, 50, False),  # at the threshold: not yet
        (1000.0, 150, 0, False),  # 50 + 10 % of 1,000 = 150
        (1000.0, 151, 0, True),
        (1000.0, 0, 151, True),  # rows the collector has not counted yet
        (100_000.0, 9_000, 2_000, False),
    ],
)
def test_statistics_are_stale_by_the_autovacuum_rule(
    reltuples: float, modified: int, written: int, expected: bool
) -> None:
    assert planner_stats.stale(reltuples, modified, written) is expected


def test_a_collect_of_many_files_analyzes_what_it_wrote(newsroom: Newsroom, pg_url: str) -> None:
    store = _on_postgres(newsroom, pg_url)
    _write(newsroom, 0, 120)
    report = collect(load_config(newsroom.config_path), store, now=NOW)
    assert report.counts["new"] == 120
    stats = _reltuples(pg_url, "articles", "source_files", "article_authors")
    assert stats == {"articles": 120.0, "source_files": 120.0, "article_authors": 120.0}
    store.close()


def test_a_streamed_collect_analyzes_before_its_retraction_check(
    newsroom: Newsroom, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batches commit on their own; the check that follows them must plan on the
    rows they wrote, so the statistics are gathered between the two."""
    monkeypatch.setattr(collect_mod, "STREAM_MIN", 60)
    store = _on_postgres(newsroom, pg_url)
    _write(newsroom, 0, 120)
    seen: list[dict[str, float]] = []
    may_retract = collect_mod._may_retract

    def spy(conn: sa.Connection, *args: object) -> bool:
        seen.append(_reltuples(pg_url, "articles", "source_files"))
        return may_retract(conn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(collect_mod, "_may_retract", spy)
    report = collect(load_config(newsroom.config_path), store, now=NOW)
    assert report.counts["new"] == 120
    assert seen == [{"articles": 120.0, "source_files": 120.0}]
    store.close()


def test_each_batch_of_a_first_import_is_planned_on_the_rows_before_it(
    newsroom: Newsroom, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a first import streams in, the statistics follow the table (gathered again
    each time it has doubled): no batch's lookups are planned on an empty table."""
    monkeypatch.setattr(collect_mod, "STREAM_MIN", 60)
    monkeypatch.setattr(collect_stream, "BATCH", 40)
    store = _on_postgres(newsroom, pg_url)
    _write(newsroom, 0, 200)
    seen: list[tuple[int, float]] = []
    states_for = collect_stream.states_for

    def spy(store: Store, conn: sa.Connection, *args: object) -> object:
        rows = conn.execute(sa.text("SELECT count(*) FROM articles")).scalar_one()
        seen.append((rows, _reltuples(pg_url, "articles")["articles"]))
        return states_for(store, conn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(collect_stream, "states_for", spy)
    assert collect(load_config(newsroom.config_path), store, now=NOW).counts["new"] == 200
    assert [rows for rows, _ in seen] == [0, 40, 80, 120, 160]
    for rows, reltuples in seen:  # the doubling rule: never more than 2x + 50 behind
        assert rows <= 2 * max(reltuples, 0) + planner_stats.THRESHOLD, seen
    assert seen[-1][1] > 0
    store.close()


def test_a_small_collect_leaves_the_statistics_alone(newsroom: Newsroom, pg_url: str) -> None:
    store = _on_postgres(newsroom, pg_url)
    _write(newsroom, 0, 10)
    assert collect(load_config(newsroom.config_path), store, now=NOW).counts["new"] == 10
    # Never analyzed: PostgreSQL 14+ says -1 (0 before).
    assert _reltuples(pg_url, "articles")["articles"] <= 0
    store.close()


def test_a_store_copied_to_postgres_is_analyzed(newsroom: Newsroom, pg_url: str) -> None:
    _write(newsroom, 0, 80)
    config = load_config(newsroom.config_path)
    with Store(config.store_url) as source:
        collect(config, source, now=NOW)
        copy_store(source, pg_url)
    stats = _reltuples(pg_url, "articles", "source_files", "beats")
    assert stats["articles"] == 80.0 and stats["source_files"] == 80.0
    assert stats["beats"] <= 0  # a handful of rows: left to autovacuum


def test_sqlite_is_left_as_it_is(newsroom: Newsroom) -> None:
    config = load_config(newsroom.config_path)
    with Store(config.store_url) as store, store.begin() as conn:
        assert planner_stats.refresh(conn, [sa.table("articles")], written=10**6) == []
        names = conn.execute(sa.text("SELECT name FROM sqlite_master")).scalars().all()
    assert "sqlite_stat1" not in names
