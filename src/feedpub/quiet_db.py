"""The quiet check's own way into the store (feedpub.quiet), without SQLAlchemy: sqlite3
for a SQLite file, psycopg for PostgreSQL. It reads a few ``meta`` keys and appends two
``runs`` rows exactly as ``Store.record_run`` writes them (the tests compare the rows a
quiet publish and a full one leave, on both databases).

Only the URLs whose meaning needs no interpretation are taken: ``sqlite:///PATH``, and
``postgresql://`` or ``postgresql+psycopg://`` of plain names (``_PG_URL``), without query
options or %-escapes. Anything else (another driver, options, an escape) gives None from
:func:`target_of` and the publish takes the full path, where SQLAlchemy reads the URL.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SQLITE_TIMEOUT = 30.0
PG_CONNECT_TIMEOUT = 10  # seconds; the full path then reports what is wrong
_SQLITE = "sqlite:///"
# A PostgreSQL URL read the same by SQLAlchemy and by libpq (tests/test_publish_quiet.py
# checks the two agree): plain user, password, host (or [IPv6]), port and database names.
_NAME = r"[A-Za-z0-9._~-]+"
_PG_URL = re.compile(
    rf"postgresql(?:\+psycopg)?://(?P<rest>(?:{_NAME}(?::{_NAME})?@)?"
    rf"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])?(?::[1-9][0-9]{{0,4}})?/{_NAME})\Z"
)

# (kind, started, finished, ok, summary as JSON text)
RunRow = tuple[str, datetime, datetime, bool, str]


@dataclass(frozen=True)
class Target:
    """A store the quiet check can open: a SQLite file, or a libpq connection URI."""

    sqlite: Path | None = None
    dsn: str | None = None


def target_of(url: str, root: Path) -> Target | None:
    """The store ``url`` names (a relative SQLite path against ``root``), or None."""
    if "?" in url or "%" in url:
        return None  # URL options or escapes: let SQLAlchemy interpret them
    if url.startswith(_SQLITE):
        if ":memory:" in url:
            return None
        db = Path(url[len(_SQLITE) :])
        return Target(sqlite=db if db.is_absolute() else root / db)
    m = _PG_URL.match(url)
    return Target(dsn="postgresql://" + m.group("rest")) if m else None


class QuietStore:
    """One connection; ``errors`` are what its driver raises (the check then gives up)."""

    def __init__(self, target: Target) -> None:
        self.errors: tuple[type[Exception], ...]
        if target.sqlite is not None:
            self.errors = (sqlite3.Error,)
            self.mark = "?"
            self.conn: Any = sqlite3.connect(
                target.sqlite, timeout=SQLITE_TIMEOUT, isolation_level=None
            )
            self.pg = False
        else:
            import psycopg

            self.errors = (psycopg.Error,)
            self.mark = "%s"
            self.conn = psycopg.connect(
                target.dsn or "", autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT
            )
            self.pg = True

    @staticmethod
    def open(target: Target) -> QuietStore | None:
        """The store, or None when it is not there or cannot be opened."""
        if target.sqlite is not None:
            if not target.sqlite.is_file():
                return None
            try:
                return QuietStore(target)
            except sqlite3.Error:
                return None
        try:
            import psycopg  # the `postgres` extra; without it the full path says so
        except ImportError:
            return None
        try:
            return QuietStore(target)
        except psycopg.Error:
            return None

    def meta(self, keys: Sequence[str]) -> dict[str, str]:
        marks = ",".join([self.mark] * len(keys))
        cur = self.conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
        return {str(k): str(v) for k, v in cur.fetchall()}

    def insert_runs(self, rows: Sequence[RunRow]) -> None:
        """Append ``runs`` rows in one transaction, as the store's column types hold them."""
        m = self.mark
        sql = f"INSERT INTO runs (kind, started, finished, ok, summary) VALUES ({m}, {m}, {m}, {m}, {m})"
        if self.pg:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(sql, [(k, _naive(a), _naive(b), ok, s) for k, a, b, ok, s in rows])
            return
        lite = [(k, _stamp(a), _stamp(b), int(ok), s) for k, a, b, ok, s in rows]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(sql, lite)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


def _naive(t: datetime) -> datetime:
    """UTC without a zone: how schema.UTCDateTime stores a time."""
    return t.astimezone(UTC).replace(tzinfo=None)


def _stamp(t: datetime) -> str:
    """A time as SQLAlchemy's DateTime holds it on SQLite (naive UTC text)."""
    return _naive(t).isoformat(sep=" ", timespec="microseconds")
