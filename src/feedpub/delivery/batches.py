"""PostgreSQL: the rows of one delivery pass, claimed a batch at a time.

Several senders (processes, hosts) drain one edition: each claims the next batch of due
rows with one ``FOR UPDATE SKIP LOCKED`` statement (``claims.claim_batch``), so they take
disjoint batches without waiting for each other, under the fenced claims. The messenger
pulls rows one by one; a new batch is claimed when the last one is used up, and what is
claimed but never pulled when the pass ends is handed back (``take_pending``) to be put
back untouched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from feedpub.clock import Clock
from feedpub.delivery import claims
from feedpub.delivery.outcome import LedgerRow, ledger_row
from feedpub.store import Store

Op = Callable[[str, Callable[[bool], Any]], Any]  # the manager's retrying store operation


@contextmanager
def autocommit(store: Store) -> Iterator[sa.Connection]:
    """A connection whose every statement commits by itself (PostgreSQL: saves the BEGIN
    and COMMIT round trips of a one-statement write)."""
    with store.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


class BatchClaims:
    """An iterator of (row, fencing token) for one pass over an edition's due rows."""

    def __init__(
        self, store: Store, edition_id: int, *, owner: str, lease: timedelta, clock: Clock,
        limit: int, op: Op,
    ) -> None:  # fmt: skip
        self.store = store
        self.edition_id = edition_id
        self.owner = owner
        self.lease = lease
        self.clock = clock
        self.limit = limit
        self.op = op
        self.pending: deque[tuple[LedgerRow, int]] = deque()
        self.done = False
        # Claimers known dead (this host) when the pass starts: their rows are due now.
        self.dead: list[str] = op("find dead claimers", self._dead)

    def __iter__(self) -> BatchClaims:
        return self

    def __next__(self) -> tuple[LedgerRow, int]:
        if not self.pending and not self.done:
            batch: list[tuple[LedgerRow, int]] = self.op("claim a batch", self._claim)
            self.done = not batch
            self.pending.extend(batch)
        if not self.pending:
            raise StopIteration
        return self.pending.popleft()

    def take_pending(self) -> list[tuple[LedgerRow, int]]:
        out = list(self.pending)
        self.pending.clear()
        self.done = True
        return out

    def _dead(self, _: bool) -> list[str]:
        with self.store.read() as conn:
            return claims.dead_claimers(conn, self.edition_id, self.owner)

    def _claim(self, _: bool) -> list[tuple[LedgerRow, int]]:
        """One statement, atomic by itself (autocommit: one round trip)."""
        with autocommit(self.store) as conn:
            got = claims.claim_batch(
                conn, edition_id=self.edition_id, owner=self.owner, now=self.clock(),
                lease=self.lease, dead=self.dead, limit=self.limit,
            )  # fmt: skip
        return [(ledger_row(r, status=seen), int(r.claim_token)) for r, seen in got]
