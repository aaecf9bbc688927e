"""Riding out a store that goes away for a moment (a PostgreSQL restart or failover, a cut
network): the ledger's writes are retried on a fresh connection instead of ending the send.

Only connection-level errors are retried (``OperationalError``/``InterfaceError`` of a
server store: the connection dropped or was refused, a serialization failure); anything
else is a bug or a schema problem and is raised at once. SQLite waits for its lock itself
(``busy_timeout``) and is never retried here. After ``patience`` seconds the last error is
raised: the caller (a sender) stops, its claims run out, and another sender or the next
run takes the rows over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from feedpub.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

PATIENCE = 120.0  # seconds a sender keeps retrying an unreachable store


def is_disconnect(store: Store, error: BaseException) -> bool:
    """A server store's connection-level failure (worth a retry on a new connection)."""
    if store.is_sqlite:
        return False
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError)


def retrying(
    store: Store,
    op: Callable[[bool], T],
    *,
    what: str,
    patience: float = PATIENCE,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """``op(retried)`` until it returns; ``retried`` tells it a previous try failed
    mid-way (its transaction may or may not have committed: the op must check)."""
    deadline = monotonic() + patience
    delay = 0.1
    retried = False
    while True:
        try:
            return op(retried)
        except Exception as e:
            if not is_disconnect(store, e) or monotonic() >= deadline:
                raise
            log.warning(
                "store unreachable; retrying", extra={"operation": what, "error": str(e)[:300]}
            )
            retried = True
            sleep(delay)
            delay = min(delay * 2, 2.0)
