"""Leases with a fencing token: "one holder of NAME at a time" among processes on one store.

A row of ``leases`` per name says who holds it (an instance id, with host and pid for
people), since when, and until when (``expires``). Every statement here is one
compare-and-swap ``UPDATE``, so two instances racing for a free lease cannot both win (on
PostgreSQL the second ``UPDATE`` waits for the first to commit and then re-checks its
``WHERE`` against the new row; on SQLite writers are serialised):

- :func:`acquire` renews the lease for its holder (same instance *and* same token), or takes
  it when it is free (released), expired or still its own from an earlier term, bumping
  ``token``;
- :func:`release` frees it at once (a clean shutdown hands over without waiting out the lease);
- :func:`check` is the *fence*: called inside a transaction that does leader-only work, it
  fails unless the caller still holds the lease with the token it was given, unexpired. On
  PostgreSQL it also takes ``FOR KEY SHARE`` on the lease row, and a takeover first takes
  ``FOR UPDATE`` (the one row lock that conflicts with it): a takeover waits until the
  fenced transaction has ended (the old leader's write and the new leader's first write
  never interleave), while the holder's renewals (plain ``UPDATE``s, which do not
  conflict) never wait for its own fenced transactions.

Expiry is judged with the ``now`` each caller passes (its clock): hosts sharing a store
need synchronised clocks (NTP), with skew well below the lease's safety margin.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.errors import FeedpubError

L = s.leases


class NotLeader(FeedpubError):
    """Leader-only work attempted by an instance that does not (or no longer) hold the lease."""


@dataclass(frozen=True, slots=True)
class Identity:
    """One running instance: a fresh id per process start, plus where it runs."""

    instance: str
    host: str
    pid: int

    @classmethod
    def new(cls) -> Identity:
        return cls(uuid.uuid4().hex[:12], socket.gethostname()[:255], os.getpid())

    def __str__(self) -> str:
        return f"{self.instance} ({self.host}, pid {self.pid})"


@dataclass(frozen=True, slots=True)
class LeaseRow:
    name: str
    holder: str | None
    host: str
    pid: int
    token: int
    since: datetime | None
    renewed: datetime | None
    expires: datetime | None

    def held(self, now: datetime) -> bool:
        """Someone holds it at ``now`` (not released, not expired)."""
        return self.holder is not None and self.expires is not None and self.expires > now


def _ensure_row(conn: Connection, name: str) -> None:
    if conn.execute(sa.select(L.c.name).where(L.c.name == name)).first() is not None:
        return
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(L).values(name=name, holder=None, host="", pid=0, token=0))
    except sa.exc.IntegrityError:
        pass  # another instance created it first: fine, the row is all we need


def acquire(
    conn: Connection, name: str, me: Identity, token: int | None, lease: timedelta, now: datetime
) -> int | None:
    """Renew (``token``: the one we hold) or take the lease ``name`` until ``now + lease``.

    Returns the token now held, or None when someone else holds it (or, on a renewal, when
    we lost it: it expired and another took it, or it was released)."""
    _ensure_row(conn, name)
    expires = now + lease
    if token is not None:
        res = conn.execute(
            sa.update(L)
            .where(L.c.name == name, L.c.holder == me.instance, L.c.token == token)
            .values(renewed=now, expires=expires)
        )
        return token if res.rowcount == 1 else None
    if conn.dialect.name == "postgresql":  # wait for the holder's fenced transactions
        conn.execute(sa.select(L.c.name).where(L.c.name == name).with_for_update())
    res = conn.execute(
        sa.update(L)
        .where(
            L.c.name == name,
            # free, expired, or still ours from a term we gave up (the token bump fences it)
            sa.or_(L.c.holder.is_(None), L.c.expires <= now, L.c.holder == me.instance),
        )
        .values(
            holder=me.instance,
            host=me.host,
            pid=me.pid,
            token=L.c.token + 1,
            since=now,
            renewed=now,
            expires=expires,
        )
    )
    if res.rowcount != 1:
        return None
    got = conn.execute(
        sa.select(L.c.token).where(L.c.name == name, L.c.holder == me.instance)
    ).scalar_one()
    return int(got)


def release(conn: Connection, name: str, me: Identity, token: int, now: datetime) -> bool:
    """Give the lease up now (if still ours); the next :func:`acquire` of anyone takes it."""
    res = conn.execute(
        sa.update(L)
        .where(L.c.name == name, L.c.holder == me.instance, L.c.token == token)
        .values(holder=None, expires=now)
    )
    return res.rowcount == 1


def check(conn: Connection, name: str, me: Identity, token: int, now: datetime) -> None:
    """The fence: NotLeader unless ``me`` holds ``name`` with ``token``, unexpired at ``now``.
    Call it inside the transaction whose writes need the lease."""
    q = sa.select(L.c.holder, L.c.token, L.c.expires).where(L.c.name == name)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(read=True, key_share=True)  # a takeover waits for our commit
    row = conn.execute(q).first()
    if row is None or row.holder != me.instance or row.token != token:
        raise NotLeader(f"this instance no longer holds the {name!r} lease (token {token})")
    if row.expires is None or row.expires <= now:
        raise NotLeader(f"the {name!r} lease of this instance expired at {row.expires}")


def current(conn: Connection, name: str) -> LeaseRow | None:
    """The lease row as stored (whether held or not), or None if never taken."""
    r = conn.execute(sa.select(L).where(L.c.name == name)).first()
    if r is None:
        return None
    return LeaseRow(r.name, r.holder, r.host, r.pid, int(r.token), r.since, r.renewed, r.expires)
