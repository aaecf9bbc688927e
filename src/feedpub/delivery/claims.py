"""Fenced claims on delivery ledger rows: who may send a row, and who may record its result.

A sender *claims* a row before handing its message to a relay, with one compare-and-swap
``UPDATE``: the row must still be what the sender read (same ``claim_token``) and still be
claimable (queued, a retry come due, or a claim whose lease ran out). The claim sets
``status='sending'``, ``claimed_by`` (this sender), ``lease_until`` (now + lease) and bumps
``claim_token``: the claim's *fencing token*.

- The owner's :class:`Heartbeat` renews ``lease_until`` of every row it holds, every
  quarter lease, for as long as the rows are in flight. A live owner's claim therefore
  never runs out however slow the relay is; a dead owner's (killed, crashed) or stalled
  owner's (frozen, cut off from the store) does, and only then may another sender take the
  row over. A claimer on this host known to be dead is taken over at once.
- Every write of a result (sent, failed, bounced, put back) is conditional on
  ``claimed_by`` *and* ``claim_token``: after a takeover the old owner's late write matches
  no row and changes nothing (:func:`record` returns False), so the ledger always holds the
  current owner's word.

The tokens are per row and only ever grow; nothing else needs to be unique. The same
statements serve several instances on PostgreSQL claiming batches with ``SELECT … FOR
UPDATE SKIP LOCKED`` (the lock only keeps two claimers off the same rows at the same
moment; the token still fences a claimer whose lease ran out).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from feedpub import schema as s
from feedpub.store import Store

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # default claim lease ([delivery] lease)


# ---- who claimed a row, and is it still alive? ----------------------------------------------
def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie is dead
        return None
    return fields[19].decode()


def owner_token(pid: int | None = None) -> str:
    """``host/pid/start/instance``: one sender (start time guards against pid reuse; the
    instance part tells two senders of one process apart)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_time(pid) or '-'}/{uuid.uuid4().hex[:8]}"


def owner_is_dead(token: str) -> bool:
    """True only when the claimer surely stopped: same host and the process is gone (or its
    pid now belongs to another process). Other hosts, or this process: unknown (False)."""
    parts = token.split("/")
    if len(parts) not in (3, 4):  # 3: written before claims had an instance part
        return False
    host, pid_s, start = parts[:3]
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    if start != "-" and os.path.isdir("/proc/self"):
        return _start_time(pid) != start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# ---- what may be claimed --------------------------------------------------------------------
def lease_ran_out(now: datetime, lease: timedelta) -> ColumnElement[bool]:
    """A ``sending`` row whose claim nobody renews any more. Rows claimed before leases
    existed (no ``lease_until``) count from their last update."""
    d = s.deliveries
    return sa.or_(
        d.c.lease_until <= now,
        sa.and_(d.c.lease_until.is_(None), d.c.updated <= now - lease),
    )


def due(now: datetime, lease: timedelta, dead: Iterable[str] = ()) -> ColumnElement[bool]:
    """Rows that may be claimed now: queued; failed with the retry come due; sending with
    the lease run out or a claimer known dead."""
    d = s.deliveries
    gone = lease_ran_out(now, lease)
    dead = list(dead)
    if dead:
        gone = sa.or_(gone, d.c.claimed_by.in_(dead))
    return sa.or_(
        d.c.status == "queued",
        sa.and_(
            d.c.status == "failed", sa.or_(d.c.next_attempt.is_(None), d.c.next_attempt <= now)
        ),
        sa.and_(d.c.status == "sending", gone),
    )


def dead_claimers(conn: sa.Connection, edition_id: int, me: str) -> list[str]:
    """Claimers of this edition's ``sending`` rows that are known dead (this host)."""
    d = s.deliveries
    owners = conn.execute(
        sa.select(d.c.claimed_by)
        .where(d.c.edition_id == edition_id, d.c.status == "sending", d.c.claimed_by.is_not(None))
        .distinct()
    ).scalars()
    return [o for o in owners if o != me and owner_is_dead(o)]


# ---- claiming, renewing, recording ----------------------------------------------------------
def claim(
    conn: sa.Connection,
    *,
    edition_id: int,
    subscriber_id: int,
    seen_status: str,
    seen_token: int,
    seen_owner: str | None,
    owner: str,
    now: datetime,
    lease: timedelta,
    owner_dead: bool = False,
) -> int | None:
    """Claim one row as read (status, token, claimer); the new fencing token, or None when
    the row changed meanwhile or is no longer claimable."""
    d = s.deliveries
    cond: list[ColumnElement[bool]] = [
        d.c.edition_id == edition_id,
        d.c.subscriber_id == subscriber_id,
        d.c.status == seen_status,
        d.c.claim_token == seen_token,
    ]
    if seen_status == "failed":
        cond.append(sa.or_(d.c.next_attempt.is_(None), d.c.next_attempt <= now))
    elif seen_status == "sending":
        cond.append(
            d.c.claimed_by.is_(None) if seen_owner is None else d.c.claimed_by == seen_owner
        )
        if not owner_dead:  # a live claimer may have renewed since we read the row
            cond.append(lease_ran_out(now, lease))
    res = conn.execute(
        sa.update(d)
        .where(*cond)
        .values(
            status="sending",
            claimed_by=owner,
            claim_token=seen_token + 1,
            lease_until=now + lease,
            updated=now,
        )
    )
    return seen_token + 1 if res.rowcount == 1 else None


def claim_batch(
    conn: sa.Connection,
    *,
    edition_id: int,
    owner: str,
    now: datetime,
    lease: timedelta,
    dead: Iterable[str] = (),
    limit: int = 50,
) -> list[tuple[sa.Row[Any], str]]:
    """PostgreSQL: claim up to ``limit`` due rows of the edition in one statement, skipping
    rows another transaction holds locked (``FOR UPDATE SKIP LOCKED``), so several senders
    take disjoint batches without waiting for each other. Each claim bumps the row's
    fencing token exactly as :func:`claim` does; the due condition is checked again on the
    locked, newest version of each row (READ COMMITTED re-check), so a row claimed and
    committed by another sender meanwhile is not taken. Returns each claimed row (new
    token, ``status='sending'``) with the status it had before the claim."""
    d = s.deliveries
    picked = (
        sa.select(d.c.edition_id, d.c.subscriber_id, d.c.status.label("seen_status"))
        .where(d.c.edition_id == edition_id, due(now, lease, dead))
        .order_by(d.c.subscriber_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    stmt = (
        sa.update(d)
        .where(d.c.edition_id == picked.c.edition_id, d.c.subscriber_id == picked.c.subscriber_id)
        .values(
            status="sending",
            claimed_by=owner,
            claim_token=d.c.claim_token + 1,
            lease_until=now + lease,
            updated=now,
        )
        .returning(*d.c, picked.c.seen_status)
    )
    return [(r, str(r.seen_status)) for r in conn.execute(stmt)]


def held_by(conn: sa.Connection, edition_id: int, owner: str) -> list[sa.Row[Any]]:
    """The edition's rows this owner holds in ``sending``."""
    d = s.deliveries
    return list(
        conn.execute(
            sa.select(d).where(
                d.c.edition_id == edition_id, d.c.status == "sending", d.c.claimed_by == owner
            )
        )
    )


def record(
    conn: sa.Connection,
    *,
    edition_id: int,
    subscriber_id: int,
    owner: str,
    token: int,
    values: dict[str, Any],
) -> bool:
    """Write a result for a row this owner holds under ``token``; False (nothing written)
    when the claim was taken over meanwhile."""
    d = s.deliveries
    res = conn.execute(
        sa.update(d)
        .where(
            d.c.edition_id == edition_id,
            d.c.subscriber_id == subscriber_id,
            d.c.status == "sending",
            d.c.claimed_by == owner,
            d.c.claim_token == token,
        )
        .values(claimed_by=None, lease_until=None, **values)
    )
    return res.rowcount == 1


def record_sent(
    conn: sa.Connection, owner: str, rows: list[tuple[int, int, int]], now: datetime
) -> set[tuple[int, int]]:
    """Mark several rows ``sent`` (one attempt more) in one statement, each only if this
    owner still holds it under the given token: ``rows`` are (edition, subscriber,
    token). Returns the (subscriber, token) pairs written."""
    d = s.deliveries
    done: set[tuple[int, int]] = set()
    by_edition: dict[int, list[tuple[int, int]]] = {}
    for edition_id, subscriber_id, token in rows:
        by_edition.setdefault(edition_id, []).append((subscriber_id, token))
    for edition_id, pairs in by_edition.items():
        res = conn.execute(
            sa.update(d)
            .where(
                d.c.edition_id == edition_id,
                sa.tuple_(d.c.subscriber_id, d.c.claim_token).in_(pairs),
                d.c.status == "sending",
                d.c.claimed_by == owner,
            )
            .values(
                status="sent",
                attempts=d.c.attempts + 1,
                next_attempt=None,
                last_error=None,
                updated=now,
                claimed_by=None,
                lease_until=None,
            )
            .returning(d.c.subscriber_id, d.c.claim_token)
        )
        done.update((int(a), int(b)) for a, b in res)
    return done


def renew(conn: sa.Connection, owner: str, until: datetime) -> int:
    """Extend the lease of every row this owner holds; the number of rows renewed."""
    d = s.deliveries
    res = conn.execute(
        sa.update(d)
        .where(d.c.claimed_by == owner, d.c.status == "sending")
        .values(lease_until=until)
    )
    return int(res.rowcount or 0)


class Heartbeat:
    """A thread renewing an owner's leases every ``lease / 4`` while it runs (a context
    manager). A failed renewal is logged and tried again at the next beat: the lease has
    three more beats of slack."""

    def __init__(
        self, store: Store, owner: str, lease: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease
        self.clock = clock
        self.interval = max(lease.total_seconds() / 4, 0.01)
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.store.begin() as conn:
                    renew(conn, self.owner, self.clock() + self.lease)
                self.beats += 1
            except Exception as e:  # the store briefly unreachable: try at the next beat
                log.warning("lease renewal failed", extra={"owner": self.owner, "error": str(e)})

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
