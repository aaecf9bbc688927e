"""Relay rate limits shared by every sending instance, kept in the store.

Several ``feedpub run`` / ``digest send`` processes (on one or several hosts) sending
through one relay must hold its limits *in sum*, so the bookkeeping lives in two small
tables instead of process memory:

- ``relay_pace``: per relay, ``next_at``, the next free send slot. A sender *reserves* a
  slot: in one transaction it locks the relay's row (``SELECT … FOR UPDATE`` on
  PostgreSQL; SQLite's write lock), takes ``max(next_at, now)`` and moves ``next_at`` on
  by ``1 / rate_per_second``, then sleeps until its slot. Sends are paced that far apart
  across all instances, as within one process (no bursts).
- ``relay_sends``: per relay and minute, the sends reserved; a slot is refused while the
  61 minute-buckets that overlap the hour before it hold ``rate_per_hour`` sends (counting
  whole minutes errs on the safe side: up to one minute's sends early). The refusal says
  how long until the oldest bucket leaves the window; the messenger sets the relay aside
  for that long (the edition pauses if no other relay is usable), as for one process.

Times are the store's clock (``clock_timestamp()`` on PostgreSQL, ``julianday('now')`` on
SQLite): every host compares against the same clock, and nothing here reads the wall
clock of its own. Each reservation is one short transaction (PostgreSQL: committed with
``synchronous_commit = off``; a counter lost at a database crash costs at most a few
slots' accuracy, never a ledger row). Only relays with a rate limit touch these tables.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from feedpub import schema as s
from feedpub.delivery.reconnect import retrying
from feedpub.errors import ServerUnavailableError
from feedpub.store import Store

log = logging.getLogger(__name__)

WINDOW_MINUTES = 60
PRUNE_EVERY = 500  # reservations between deletions of buckets older than two hours
PATIENCE = 60.0  # seconds to wait for an unreachable store before pausing the edition


def _db_now(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


class StoreRateLimiter:
    """One relay's per-second and per-hour limits, shared through the store."""

    local = False  # the messenger calls it without holding its own lock

    def __init__(
        self,
        store: Store,
        relay: str,
        per_second: float | None = None,
        per_hour: int | None = None,
        *,
        patience: float = PATIENCE,
        seed_from_ledger: bool = False,
    ) -> None:
        """``seed_from_ledger``: the first time this relay is limited through the store,
        count what the ledger sent in the hour before (all editions) as its sends, so an
        upgraded store does not start a fresh hour (the main relay)."""
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be positive")
        if per_hour is not None and per_hour <= 0:
            raise ValueError("per_hour must be positive")
        self.store = store
        self.relay = relay
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self.patience = patience
        self.dialect = store.engine.dialect.name
        self.seed_from_ledger = seed_from_ledger
        self._calls = 0
        self.last_slot = 0.0  # the store-clock time of the last slot reserved

    @property
    def unlimited(self) -> bool:
        return self.interval == 0.0 and self.per_hour is None

    def reserve(self, now: float = 0.0) -> tuple[float, bool]:
        """``(delay, True)``: a slot is reserved ``delay`` seconds from now (sleep, then
        send); ``(wait, False)``: the hourly limit is reached for about ``wait`` seconds,
        nothing reserved. ``now`` is ignored: the store's clock decides.

        Raises ServerUnavailableError when the store stays unreachable: the edition
        pauses, nobody is charged an attempt."""
        try:
            return retrying(self.store, lambda _: self._reserve(), what="reserve a send slot",
                            patience=self.patience)  # fmt: skip
        except sa.exc.SQLAlchemyError as e:
            raise ServerUnavailableError(
                f"{self.relay}: the shared rate limit cannot be read from the store: {e}"[:500]
            ) from None

    def _seed(self, conn: sa.Connection) -> None:
        d, sends = s.deliveries, s.relay_sends
        now = float(conn.execute(sa.select(_db_now(self.dialect))).scalar_one())
        since, until = (datetime.fromtimestamp(t, UTC) for t in (now - 3600, now))
        per_minute = Counter(
            int(t.timestamp() // 60)
            for t in conn.execute(
                sa.select(d.c.updated).where(
                    d.c.status == "sent", d.c.updated > since, d.c.updated <= until
                )
            ).scalars()
        )
        for minute, n in per_minute.items():
            conn.execute(sa.insert(sends).values(relay=self.relay, minute=minute, sends=n))

    def _reserve(self) -> tuple[float, bool]:
        pace, sends = s.relay_pace, s.relay_sends
        with self.store.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            first = conn.execute(
                _insert(self.dialect, pace)
                .values(relay=self.relay, next_at=0.0)
                .on_conflict_do_nothing(index_elements=[pace.c.relay])
            ).rowcount
            if first == 1 and self.per_hour is not None and self.seed_from_ledger:
                self._seed(conn)
            row = conn.execute(
                sa.select(pace.c.next_at, _db_now(self.dialect).label("now"))
                .where(pace.c.relay == self.relay)
                .with_for_update()
            ).one()
            now = float(row.now)
            slot = max(float(row.next_at), now)
            if self.per_hour is not None:
                minute = int(slot // 60)
                used, oldest = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(sends.c.sends), 0), sa.func.min(sends.c.minute))
                    .where(sends.c.relay == self.relay, sends.c.minute >= minute - WINDOW_MINUTES)
                ).one()  # fmt: skip
                if int(used) >= self.per_hour:
                    free_at = 60.0 * (int(oldest) + WINDOW_MINUTES + 1)
                    return max(free_at - now, 1.0), False
                conn.execute(
                    _insert(self.dialect, sends)
                    .values(relay=self.relay, minute=minute, sends=1)
                    .on_conflict_do_update(
                        index_elements=[sends.c.relay, sends.c.minute],
                        set_={"sends": sends.c.sends + 1},
                    )
                )
                self._calls += 1
                if self._calls % PRUNE_EVERY == 1:
                    conn.execute(
                        sa.delete(sends).where(
                            sends.c.relay == self.relay,
                            sends.c.minute < minute - 2 * WINDOW_MINUTES,
                        )
                    )
            conn.execute(
                sa.update(pace)
                .where(pace.c.relay == self.relay)
                .values(next_at=slot + self.interval)
            )
            self.last_slot = slot
            return slot - now, True
