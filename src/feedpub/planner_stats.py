"""PostgreSQL's planner statistics brought up to date after a large write.

PostgreSQL chooses a query plan from per-table statistics (row counts, value spreads)
that ``ANALYZE`` gathers. The autovacuum daemon gathers them again once a table has
changed by more than ``autovacuum_analyze_threshold`` rows plus
``autovacuum_analyze_scale_factor`` of its size (50 rows + 10 % by default; PostgreSQL
docs, "Routine Vacuuming", 25.1.6 "The Autovacuum Daemon"), but only at its next round
(``autovacuum_naptime``, a minute), and never where autovacuum is off. Until then a table
that grew from nothing to 100,000 rows in one collect still looks empty to the planner,
and it may pick a nested loop comparing every row with every row: the folder's
retraction check (``collect._may_retract``) took 3.3 s at 10,000 articles and minutes at
100,000, against 10 ms once analyzed. The PostgreSQL docs say as much of bulk loads
("Populating a Database", 14.4.8: "Run ANALYZE Afterwards").

So the writers that can add many rows at once (a collect, a frozen edition's ledger, a
store copy) call :func:`refresh` afterwards: it applies the autovacuum daemon's rule at
once, counting the rows the caller just wrote as well as those PostgreSQL's statistics
collector has counted since the table's last analyze (``n_mod_since_analyze``, which a
backend reports only after its transaction ends). SQLite needs nothing: without
``sqlite_stat1`` its planner assumes indexes are selective, which is what our queries
want.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# The autovacuum daemon's defaults (autovacuum_analyze_threshold, _scale_factor).
THRESHOLD = 50
SCALE = 0.1

_STATE = sa.text(
    "SELECT c.relname, c.reltuples, COALESCE(st.n_mod_since_analyze, 0) "
    "FROM pg_class c LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid "
    "WHERE c.oid = ANY(CAST(:names AS regclass[]))"
)


def stale(reltuples: float, modified: int, written: int, scale: float = SCALE) -> bool:
    """Whether a table's statistics are out of date by the autovacuum daemon's rule.
    ``reltuples`` is -1 for a table never analyzed (PostgreSQL 14+), 0 before."""
    return max(modified, written) > THRESHOLD + scale * max(reltuples, 0.0)


def refresh(
    conn: Connection, tables: Iterable[sa.Table], *, written: int = 0, scale: float = SCALE
) -> list[str]:
    """On PostgreSQL, ``ANALYZE`` each of ``tables`` whose statistics are stale, counting
    ``written`` rows just written to each (they may not be reported yet). Runs in the
    caller's transaction (ANALYZE counts that transaction's own new rows). Returns the
    tables analyzed. A failure (no privilege, a lock timeout) is logged, not raised: the
    statistics only make plans better. ``scale``: the growth that makes them stale
    (a streamed import passes 1.0: analyzed each time the table has doubled, a handful
    of times in all, each batch's lookups planned on the size it has)."""
    if conn.dialect.name != "postgresql":
        return []
    names = sorted({t.name for t in tables})
    done: list[str] = []
    try:
        with conn.begin_nested():
            rows = conn.execute(_STATE, {"names": names}).all()
            for name, reltuples, modified in rows:
                if stale(float(reltuples), int(modified), written, scale):
                    conn.execute(sa.text(f'ANALYZE "{name}"'))
                    done.append(str(name))
    except sa.exc.DBAPIError as e:
        log.warning("could not update planner statistics", extra={"error": str(e.orig)})
        return []
    done.sort()
    if done:
        log.info("planner statistics updated", extra={"tables": ",".join(done)})
    return done
