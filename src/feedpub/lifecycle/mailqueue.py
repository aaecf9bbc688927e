"""The mail queue (table ``mail_queue``): confirmation and welcome messages, queued by
the web request in its own transaction and sent later by the daemon or ``digest send``
(``feedpub.lifecycle.mailsend``), never inline in an HTTP request.

Rows: queued -> sending (claimed: ``UPDATE ... WHERE status=<read>``, so two processes
never both send one) -> sent | failed (retried with backoff) | bounced (permanent, or
given up). A ``sending`` claim older than ``STALE`` is taken over (a crashed sender).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.store import Store

KINDS = ("confirm", "welcome")
STALE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class QueuedMail:
    id: int
    kind: str
    newsletter: str
    recipient: str
    signup_id: int | None
    subscriber_id: int | None
    status: str
    attempts: int
    updated: datetime


def enqueue(
    conn: Connection,
    kind: str,
    newsletter: str,
    recipient: str,
    *,
    now: datetime,
    signup_id: int | None = None,
    subscriber_id: int | None = None,
) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown queued mail kind {kind!r}")
    new_id = conn.execute(
        sa.insert(s.mail_queue).values(
            kind=kind,
            newsletter=newsletter,
            recipient=recipient,
            signup_id=signup_id,
            subscriber_id=subscriber_id,
            status="queued",
            attempts=0,
            created=now,
            updated=now,
        )
    ).inserted_primary_key
    assert new_id is not None
    return int(new_id[0])


def due(store: Store, now: datetime, limit: int) -> list[QueuedMail]:
    q = s.mail_queue
    with store.read() as conn:
        rows = conn.execute(
            sa.select(q)
            .where(
                sa.or_(
                    q.c.status == "queued",
                    sa.and_(
                        q.c.status == "failed",
                        sa.or_(q.c.next_attempt.is_(None), q.c.next_attempt <= now),
                    ),
                    sa.and_(q.c.status == "sending", q.c.updated <= now - STALE),
                )
            )
            .order_by(q.c.id)
            .limit(limit)
        ).all()
    return [
        QueuedMail(
            r.id,
            r.kind,
            r.newsletter,
            r.recipient,
            r.signup_id,
            r.subscriber_id,
            r.status,
            r.attempts,
            r.updated,
        )
        for r in rows
    ]


def claim(store: Store, mail: QueuedMail, now: datetime) -> bool:
    q = s.mail_queue
    cond = [q.c.id == mail.id, q.c.status == mail.status]
    if mail.status == "sending":
        cond.append(q.c.updated == mail.updated)
    with store.begin() as conn:
        res = conn.execute(sa.update(q).where(*cond).values(status="sending", updated=now))
        return res.rowcount == 1


def record(
    store: Store,
    mail_id: int,
    *,
    status: str,
    now: datetime,
    attempts: int,
    next_attempt: datetime | None = None,
    error: str | None = None,
) -> None:
    q = s.mail_queue
    with store.begin() as conn:
        conn.execute(
            sa.update(q)
            .where(q.c.id == mail_id)
            .values(
                status=status,
                attempts=attempts,
                next_attempt=next_attempt,
                last_error=None if error is None else error[:2000],
                updated=now,
            )
        )


def counts(conn: Connection) -> dict[str, int]:
    q = s.mail_queue
    return {
        str(st): int(n)
        for st, n in conn.execute(sa.select(q.c.status, sa.func.count()).group_by(q.c.status))
    }


def prune_sent(conn: Connection, before: datetime) -> int:
    """Forget sent and given-up queued mail older than ``before`` (the address is in it)."""
    q = s.mail_queue
    res = conn.execute(
        sa.delete(q).where(q.c.status.in_(("sent", "bounced")), q.c.updated < before)
    )
    return int(res.rowcount or 0)
