"""Copy a whole store to another database (``feedpub store migrate --to URL``): how a
newsroom moves from its SQLite file to PostgreSQL.

The target is opened (and so migrated to this feedpub's schema) and must be empty; every
table is copied in foreign-key order, in batches, inside ONE transaction on the target: a
failure leaves the target as empty as it was. Row counts are compared before the commit.
On PostgreSQL the id sequences are moved past the copied ids, so the next subscriber or
edition gets a fresh id. The scheduler's job table is not copied: the daemon rebuilds it
from config.toml at every start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import planner_stats
from feedpub import schema as s
from feedpub.errors import StoreError, UsageError
from feedpub.store import Store

BATCH = 2000
# Rows the target has before anything is copied (written when it was opened).
_OWN_META = {"schema_version", "generation"}


@dataclass
class CopyReport:
    source: str
    target: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _count(conn: Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _refuse_unless_empty(conn: Connection, target: str) -> None:
    for table in s.metadata.sorted_tables:
        if table is s.meta:
            extra = conn.execute(
                sa.select(sa.func.count()).where(s.meta.c.key.not_in(_OWN_META))
            ).scalar_one()
            if extra:
                raise UsageError(f"the target store {target} is not empty (table meta); "
                                 "migrate into a new, empty database")  # fmt: skip
        elif _count(conn, table):
            raise UsageError(
                f"the target store {target} is not empty (table {table.name}); "
                "migrate into a new, empty database"
            )


def _reset_sequences(conn: Connection) -> None:
    """PostgreSQL: move each serial id's sequence past the copied ids."""
    for table in s.metadata.sorted_tables:
        for col in table.primary_key.columns:
            if col.autoincrement is True:
                conn.execute(
                    sa.text(
                        "SELECT setval(pg_get_serial_sequence(:t, :c), "
                        f"COALESCE((SELECT MAX({col.name}) FROM {table.name}), 0) + 1, false)"
                    ),
                    {"t": table.name, "c": col.name},
                )


def copy_store(
    source: Store,
    target_url: str,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every row of ``source`` into the empty store at ``target_url``."""
    if sa.engine.make_url(target_url) == source.engine.url:
        raise UsageError("--to names the store being copied; give another database")
    target = Store(target_url)
    report = CopyReport(source.url, target_url)
    try:
        with source.read() as src, target.begin() as dst:
            _refuse_unless_empty(dst, target_url)
            for table in s.metadata.sorted_tables:
                if table is s.meta:
                    dst.execute(s.meta.delete())
                copied = 0
                result = src.execution_options(yield_per=BATCH).execute(sa.select(table))
                for chunk in result.mappings().partitions(BATCH):
                    dst.execute(table.insert(), [dict(r) for r in chunk])
                    copied += len(chunk)
                    if progress is not None:
                        progress(table.name, copied)
                report.rows[table.name] = copied
            for table in s.metadata.sorted_tables:
                have, want = _count(dst, table), report.rows[table.name]
                if have != want:  # pragma: no cover - a driver that lost rows
                    raise StoreError(f"copy of {table.name}: {have} rows arrived of {want}")
            if dst.dialect.name == "postgresql":
                _reset_sequences(dst)
            for table in s.metadata.sorted_tables:  # a bulk load: statistics afterwards
                planner_stats.refresh(dst, [table], written=report.rows[table.name])
    except sa.exc.SQLAlchemyError as e:
        raise StoreError(f"copying the store to {target_url} failed (nothing kept): {e}") from None
    finally:
        target.close()
    return report
