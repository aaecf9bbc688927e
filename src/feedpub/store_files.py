"""The recorded (size, mtime_ns) of a folder source's files (table ``source_files``).

A collect skips a file whose stats are as recorded. The whole table of a source is read
when the whole folder is walked; when a hint vouches for most of the folder
(``feedpub.collect_scope``), only the rows of some folders are read and written, and
those of the others are only counted.

A folder is written as the walk names it: ``""`` for the top, ``"a/b/"`` below; its
rows are the paths that start with it and hold no further ``/``. On SQLite a folder's
rows are one range of the primary key (text compares by bytes); on PostgreSQL, whose
text order follows the database's collation, one pass over the source's rows: a
``LIKE`` on the folders' prefixes for their rows, a regular expression giving each
path's folder for the counts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s

Stats = dict[str, tuple[int, int]]

# SQLite: the folder's rows, by a range of the (source, path) key: text compares by
# bytes, and every path under "a/b/" sorts from "a/b/" up to, not including, "a/b0"
# ('0' follows '/'). ``instr(substr(...))`` keeps the files directly in it.
_IN_FOLDER = (
    "source = ? AND path >= ? AND path < ? AND instr(substr(path, ?), '/') = 0",
    "source = ? AND instr(path, '/') = 0",
)


def _where(source: str, folder: str) -> tuple[str, tuple[object, ...]]:
    if not folder:
        return _IN_FOLDER[1], (source,)
    return _IN_FOLDER[0], (source, folder, folder[:-1] + "0", len(folder) + 1)


# The folder of a path on PostgreSQL: everything up to its last "/" ("" at the top).
_PG_FOLDER = "regexp_replace(path, '[^/]*$', '')"


def folder_counts(conn: Connection, source: str, folders: Iterable[str]) -> dict[str, int]:
    """How many files directly in each of ``folders`` have recorded stats."""
    if conn.dialect.name == "sqlite":
        out = {}
        for folder in folders:
            where, params = _where(source, folder)
            sql = f"SELECT count(*) FROM source_files WHERE {where}"
            out[folder] = int(conn.exec_driver_sql(sql, params).one()[0])
        return out
    q = sa.text(
        f"SELECT {_PG_FOLDER} AS folder, count(*) FROM source_files WHERE source = :source"
        " GROUP BY 1"
    )
    counted = {str(f): int(n) for f, n in conn.execute(q, {"source": source})}
    return {folder: counted.get(folder, 0) for folder in folders}


def source_count(conn: Connection, source: str) -> int:
    t = s.source_files
    return int(conn.execute(sa.select(sa.func.count()).where(t.c.source == source)).scalar_one())


def folder_stats(conn: Connection, source: str, folders: Iterable[str]) -> Stats:
    """The recorded stats of the files directly in ``folders``."""
    out: Stats = {}
    wanted = list(folders)
    if conn.dialect.name != "sqlite":
        # LIKE on a prefix, exact and case-sensitive here (no index: one pass).
        binds: dict[str, object] = {"source": source}
        conds = []
        for i, folder in enumerate(wanted):
            if not folder:
                conds.append("strpos(path, '/') = 0")
                continue
            like = folder.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
            conds.append(f"(path LIKE :p{i} ESCAPE '!' AND strpos(substr(path, :n{i}), '/') = 0)")
            binds[f"p{i}"], binds[f"n{i}"] = like, len(folder) + 1
        if conds:
            q = sa.text(
                "SELECT path, size, mtime_ns FROM source_files"
                f" WHERE source = :source AND ({' OR '.join(conds)})"
            )
            found = conn.execute(q, binds)
            out.update((str(p), (int(z), int(m))) for p, z, m in found)
        return out
    for folder in wanted:
        where, params = _where(source, folder)
        rows = conn.exec_driver_sql(
            f"SELECT path, size, mtime_ns FROM source_files WHERE {where}", params
        )
        out.update((str(p), (int(z), int(m))) for p, z, m in rows)
    return out


def load_stats(conn: Connection, source: str) -> Stats:
    """Every recorded file of ``source``."""
    t = s.source_files
    q = sa.select(t.c.path, t.c.size, t.c.mtime_ns).where(t.c.source == source)
    return {path: (size, mtime) for path, size, mtime in conn.execute(q)}


def stats_of(conn: Connection, source: str, paths: Collection[str]) -> Stats:
    """The recorded stats of those of ``paths`` that have any."""
    t = s.source_files
    keys = list(paths)
    out: Stats = {}
    for i in range(0, len(keys), 400):
        out.update(
            (r.path, (r.size, r.mtime_ns))
            for r in conn.execute(
                sa.select(t.c.path, t.c.size, t.c.mtime_ns).where(
                    t.c.source == source, t.c.path.in_(keys[i : i + 400])
                )
            )
        )
    return out


def save_file_stats(
    conn: Connection,
    source: str,
    stats: Stats,
    *,
    complete: bool,
    known: Stats | None = None,
    folders: Collection[str] | None = None,
) -> None:
    """Make ``source_files`` of ``source`` hold ``stats`` (only those rows, when
    ``complete``): inserts, updates and deletes, each one executemany. ``known`` is what
    the table held when the source was read; when it still holds exactly that (one
    aggregate query, not every row) only the difference is written.

    ``folders``: ``stats`` covers only these folders (a scoped listing, see
    ``feedpub.collect_scope``): ``complete`` then means complete within them, their rows
    are read again here (a concurrent collect may have written some), and no row of
    another folder is touched."""
    t = s.source_files
    if known is not None and stats == known:
        return  # nothing to write (rows a concurrent collect wrote since are newer: kept)
    if folders is not None:
        existing: Stats | None = folder_stats(conn, source, folders)
    else:
        existing = known if known is not None and _unchanged_since(conn, source, known) else None
    if existing is None and not complete:  # a part of the listing: its rows only
        existing = stats_of(conn, source, stats)
    if existing is None:
        existing = load_stats(conn, source)
    new, changed = [], []
    for key, stat in stats.items():
        old = existing.get(key)
        if old is None:
            new.append({"source": source, "path": key, "size": stat[0], "mtime_ns": stat[1]})
        elif old != stat:
            changed.append({"b_path": key, "size": stat[0], "mtime_ns": stat[1]})
    if new:
        conn.execute(sa.insert(t), new)
    if changed:
        conn.execute(
            sa.update(t).where(t.c.source == source, t.c.path == sa.bindparam("b_path")), changed
        )
    if complete:
        gone = [{"b_path": key} for key in existing if key not in stats]
        if gone:
            conn.execute(
                sa.delete(t).where(t.c.source == source, t.c.path == sa.bindparam("b_path")), gone
            )


def stats_checksum(conn: Connection, source: str) -> tuple[int, int, int]:
    """(rows, total size, sum of mtimes mod a prime) of ``source_files`` for ``source``."""
    t = s.source_files
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(t.c.size), 0),
            sa.func.coalesce(sa.func.sum(t.c.mtime_ns % _PRIME), 0),
        ).where(t.c.source == source)
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


_PRIME = 1_000_000_007


def checksum_of(stats: Stats) -> tuple[int, int, int]:
    return (
        len(stats),
        sum(v[0] for v in stats.values()),
        sum(v[1] % _PRIME for v in stats.values()),
    )


def _unchanged_since(conn: Connection, source: str, known: Stats) -> bool:
    return stats_checksum(conn, source) == checksum_of(known)
