"""How many stored articles each feed holds, kept by the database itself.

An incremental build compares every feed's article count with the last build's: a
feed whose count moved lost or gained an article (a beat or an author reassigned). Counting
that with ``GROUP BY`` reads an index entry per stored article: 18 ms at 100,000 articles
while SQLite's pages are cached, 0.48 s once the kernel has dropped them, most of a
one-article publish. So the store keeps the counts: triggers on ``articles`` and
``article_authors`` append signed deltas to ``feed_count_deltas`` (feed ident, +n/-n), and
the counts are the deltas' sums per feed, a read of a few hundred rows whatever the
archive's size.

Appended deltas, not one counter row per feed: on PostgreSQL a counter updated by every
insert would make concurrent collects wait on (and deadlock over) the same few rows; an
append never waits. The table is folded back to one row per feed (``compact``) by the
build, in one statement on PostgreSQL so that deltas committed meanwhile are neither lost
nor counted twice. A full build counts from the articles themselves and compares
(``drifted``): kept counts that differ (a table edited by hand) are replaced by that count
(``reset``), otherwise folded.

Feed idents are the feeds stage's (``feeds.model.FeedKind``): ``beat:SLUG``,
``author:SLUG``; an article without a beat counts under ``site:`` (the site feed's count is
the sum of every non-author row). The triggers' SQL names them; tests pin the two together.

This table is derived: it is not in ``schema.metadata`` (so ``store migrate --to`` copies
the articles and the target's triggers count them) and is never read for anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

derived = sa.MetaData()

deltas = sa.Table(
    "feed_count_deltas",
    derived,
    sa.Column("feed", sa.String(250), nullable=False),
    sa.Column("d", sa.BigInteger, nullable=False),
)

SITE = "site:"
BEAT = "beat:"
AUTHOR = "author:"

# (table, column, the feed an article of that row counts under, as SQL on the row alias).
_COUNTED = (
    ("articles", "beat", f"COALESCE('{BEAT}' || {{row}}.beat, '{SITE}')"),
    ("article_authors", "author_slug", f"'{AUTHOR}' || {{row}}.author_slug"),
)


# ---- SQLite: row triggers (SQL As Understood By SQLite, CREATE TRIGGER) ----------------
def _sqlite_ddl() -> list[str]:
    out: list[str] = []
    for table, column, feed in _COUNTED:
        new, old = feed.format(row="NEW"), feed.format(row="OLD")
        add = f"INSERT INTO feed_count_deltas (feed, d) VALUES ({new}, 1);"
        sub = f"INSERT INTO feed_count_deltas (feed, d) VALUES ({old}, -1);"
        name = f"feed_counts_{table}"
        out += [
            f"DROP TRIGGER IF EXISTS {name}_ins",
            f"DROP TRIGGER IF EXISTS {name}_del",
            f"DROP TRIGGER IF EXISTS {name}_upd",
            f"CREATE TRIGGER {name}_ins AFTER INSERT ON {table} BEGIN {add} END",
            f"CREATE TRIGGER {name}_del AFTER DELETE ON {table} BEGIN {sub} END",
            # Only a change of the counted column moves a count: other updates cost nothing.
            f"CREATE TRIGGER {name}_upd AFTER UPDATE OF {column} ON {table} "
            f"WHEN OLD.{column} IS NOT NEW.{column} BEGIN {sub} {add} END",
        ]
    return out


# ---- PostgreSQL: statement triggers with transition tables (CREATE TRIGGER, REFERENCING):
# one aggregated insert per statement, so a bulk insert of 1,000 articles adds a row per
# beat, not a row per article; an update that moves nothing adds none.
def _postgresql_ddl() -> list[str]:
    out: list[str] = []
    for table, _column, feed in _COUNTED:
        new, old = feed.format(row="n"), feed.format(row="o")
        fn = f"feedpub_count_{table}"
        body = f"""
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO feed_count_deltas (feed, d)
      SELECT {new}, count(*) FROM new_rows n GROUP BY 1;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO feed_count_deltas (feed, d)
      SELECT {old}, -count(*) FROM old_rows o GROUP BY 1;
  ELSE
    INSERT INTO feed_count_deltas (feed, d)
      SELECT feed, sum(d) FROM (
        SELECT {new} AS feed, 1 AS d FROM new_rows n
        UNION ALL
        SELECT {old}, -1 FROM old_rows o
      ) moved GROUP BY feed HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END $$"""
        name = f"feed_counts_{table}"
        out += [
            body,
            f"DROP TRIGGER IF EXISTS {name}_ins ON {table}",
            f"DROP TRIGGER IF EXISTS {name}_del ON {table}",
            f"DROP TRIGGER IF EXISTS {name}_upd ON {table}",
            f"CREATE TRIGGER {name}_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS "
            f"new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}()",
            f"CREATE TRIGGER {name}_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS "
            f"old_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}()",
            f"CREATE TRIGGER {name}_upd AFTER UPDATE ON {table} REFERENCING OLD TABLE AS "
            f"old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}()",
        ]
    return out


def _exact_sql() -> str:
    """Every feed's count from the rows themselves (the triggers' keys)."""
    parts = [
        f"SELECT {feed.format(row=table)} AS feed, count(*) AS d FROM {table} GROUP BY 1"
        for table, _column, feed in _COUNTED
    ]
    return " UNION ALL ".join(parts)


def install(conn: Connection) -> None:
    """The migration step: the table, its triggers, and the counts of what is stored now.
    Idempotent (a re-run replaces the triggers and recounts)."""
    derived.create_all(conn)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        ddl = _sqlite_ddl()
    elif dialect == "postgresql":
        ddl = _postgresql_ddl()
    else:  # pragma: no cover - the store accepts these two
        raise NotImplementedError(f"feed counts on {dialect}")
    for statement in ddl:
        conn.exec_driver_sql(statement)
    reset(conn)


def read(conn: Connection) -> tuple[dict[str, int], int]:
    """({feed ident: stored articles} for the site and the feeds holding any, delta rows
    read)."""
    query = sa.select(deltas.c.feed, sa.func.sum(deltas.c.d), sa.func.count()).group_by(
        deltas.c.feed
    )
    rows = conn.execute(query).all()
    return _per_feed((feed, total) for feed, total, _n in rows), sum(int(r[2]) for r in rows)


def exact(conn: Connection) -> dict[str, int]:
    """The same counts, counted from the articles (a pass over every one of them)."""
    return _per_feed((feed, total) for feed, total in conn.exec_driver_sql(_exact_sql()))


def _per_feed(totals: Iterable[tuple[str, Any]]) -> dict[str, int]:
    """Each key's total as the build wants it: the site's (every key but the authors')
    first and present even when 0, then each feed holding any article."""
    site = 0
    out: dict[str, int] = {}
    for feed, total in totals:
        n = int(total)
        if not feed.startswith(AUTHOR):
            site += n
        if feed != SITE and n:
            out[feed] = n
    return {SITE: site, **out}


def compact(conn: Connection) -> None:
    """Fold the deltas into one row per feed (in a write transaction)."""
    if conn.dialect.name == "postgresql":
        # One statement, one snapshot: deltas committed after it began are not deleted
        # and stay as they are.
        conn.exec_driver_sql(
            "WITH gone AS (DELETE FROM feed_count_deltas RETURNING feed, d) "
            "INSERT INTO feed_count_deltas (feed, d) "
            "SELECT feed, sum(d) FROM gone GROUP BY feed HAVING sum(d) <> 0"
        )
        return
    # SQLite: the write transaction holds the database's only write lock.
    sums = conn.execute(
        sa.select(deltas.c.feed, sa.func.sum(deltas.c.d).label("d")).group_by(deltas.c.feed)
    ).all()
    conn.execute(deltas.delete())
    folded = [{"feed": feed, "d": int(d)} for feed, d in sums if int(d)]
    if folded:
        conn.execute(deltas.insert(), folded)


def drifted(conn: Connection) -> list[str]:
    """Feeds whose kept count differs from the stored rows' (one statement, so one
    snapshot on PostgreSQL): none unless someone edited the table or turned triggers off."""
    rows = conn.exec_driver_sql(
        "SELECT feed FROM (SELECT feed, d FROM feed_count_deltas "
        f"UNION ALL SELECT feed, -d FROM ({_exact_sql()}) counted) both_sides "
        "GROUP BY feed HAVING sum(d) <> 0 ORDER BY feed"
    )
    return [str(feed) for (feed,) in rows]


def reset(conn: Connection) -> None:
    """Replace the deltas with the counts of the stored rows (in a write transaction)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "WITH gone AS (DELETE FROM feed_count_deltas) "
            f"INSERT INTO feed_count_deltas (feed, d) {_exact_sql()}"
        )
        return
    conn.execute(deltas.delete())
    conn.exec_driver_sql(f"INSERT INTO feed_count_deltas (feed, d) {_exact_sql()}")
