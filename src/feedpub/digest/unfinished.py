"""Editions not finished yet, and which of them the next send or daemon tick must take up.

An edition is finished when it is ``sent`` (every ledger row sent, bounced or cancelled,
and its web archive page written) or ``skipped``. Anything else is taken up by the next
``digest send`` of its newsletter and by the daemon's next tick:

- one that owes nothing any more (a sender killed after the last sent-mark, before it
  marked the edition sent and wrote its archive page) is *finished*, whatever its age;
- one with rows due now (queued, a retry come due, a claim whose lease ran out) is
  *resumed*, manual (``--extra``) editions as much as scheduled ones, while it is younger
  than the resume window (``max(misfire grace, [delivery.smtp] max_age)``: older retries
  would give up anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.delivery import claims
from feedpub.slots import parse_slot_key
from feedpub.store import Store

FINISHED = ("sent", "skipped")
OWED = ("queued", "sending", "failed")


@dataclass(frozen=True, slots=True)
class Unfinished:
    edition_id: int
    newsletter: str
    slot: str  # the edition's key: a schedule slot or "manual-..."
    created: datetime
    due: bool  # rows to send now (else: nothing owed, only finishing left)

    @property
    def manual(self) -> bool:
        return parse_slot_key(self.slot) is None

    def within(self, window: timedelta, now: datetime) -> bool:
        """Young enough to resume: its slot (a manual edition: its freezing) at most
        ``window`` ago. An edition that owes nothing is always finished."""
        if not self.due:
            return True
        since = parse_slot_key(self.slot) or self.created
        return now - since <= window


def unfinished_editions(
    store: Store, now: datetime, lease: timedelta, newsletter: str | None = None
) -> list[Unfinished]:
    """Unfinished editions with rows due now or nothing owed, oldest first (any age: the
    caller applies :meth:`Unfinished.within`). Rows held under a live claim, or failed
    rows whose retry is not due, make an edition neither; rows of a claimer known dead
    (this host, process gone) are due at once."""
    e, d = s.editions, s.deliveries
    with store.read() as conn:
        claimers = conn.execute(
            sa.select(d.c.claimed_by)
            .join(e, e.c.id == d.c.edition_id)
            .where(
                e.c.status.not_in(FINISHED),
                d.c.status == "sending",
                d.c.claimed_by.is_not(None),
            )
            .distinct()
        ).scalars()
        dead = [c for c in claimers if claims.owner_is_dead(c)]
    due = sa.exists().where(d.c.edition_id == e.c.id, claims.due(now, lease, dead))
    owed = sa.exists().where(d.c.edition_id == e.c.id, d.c.status.in_(OWED))
    q = sa.select(e.c.id, e.c.newsletter, e.c.slot, e.c.created, due.label("due")).where(
        e.c.status.not_in(FINISHED), sa.or_(due, ~owed)
    )
    if newsletter is not None:
        q = q.where(e.c.newsletter == newsletter)
    with store.read() as conn:
        rows = conn.execute(q.order_by(e.c.created, e.c.id)).all()
    return [Unfinished(r.id, r.newsletter, r.slot, r.created, bool(r.due)) for r in rows]


def unfinished_manual(store: Store, newsletter: str, now: datetime, lease: timedelta) -> str | None:
    """The key of the oldest unfinished manual edition to take up now, else None. A manual
    key is the time of the send, so a rerun could never find it by key: without this, a
    crashed or paused ``--extra`` edition would never be finished, and the next ``--extra``
    would freeze a new, empty (skipped) edition instead."""
    for u in unfinished_editions(store, now, lease, newsletter):
        if u.manual:
            return u.slot
    return None
