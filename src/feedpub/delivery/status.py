"""``digest status EDITION``: what the ledger says about one edition (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.errors import UsageError
from feedpub.store import Store

STATUSES = ("queued", "sending", "sent", "failed", "bounced")


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    edition_id: int
    newsletter: str
    number: int
    slot: str
    status: str  # the edition's: frozen/sending/paused/sent/skipped
    created: datetime
    finished: datetime | None
    counts: dict[str, int]  # every ledger status, zeros included
    attempts: int  # SMTP transactions made so far (all rows)
    next_attempt: datetime | None  # earliest retry of a failed row
    errors: list[tuple[str, int]]  # most frequent last errors of unfinished/bounced rows
    issue: int | None = None  # the "No." readers see (skipped editions not counted); None: skipped

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return self.counts["queued"] + self.counts["sending"] + self.counts["failed"]


def find_edition(store: Store, ref: str) -> int:
    """An edition by id (``12``), newsletter (its latest: ``daily``), newsletter and
    number (``daily/3``: the "No. 3" readers saw, skipped editions not counted) or
    newsletter and slot (``daily/2026-11-26T07:00Z``)."""
    e = s.editions
    ref = ref.strip()
    q = sa.select(e.c.id)
    if ref.isdigit():
        q = q.where(e.c.id == int(ref))
    elif "/" in ref:
        nl, _, which = ref.partition("/")
        q = q.where(e.c.newsletter == nl)
        if which.isascii() and which.isdigit():
            n = int(which)
            q = q.where(e.c.status != "skipped").order_by(e.c.number).offset(max(n - 1, 0))
            q = q.limit(1 if n >= 1 else 0)
        else:
            q = q.where(sa.or_(e.c.slot == which, sa.func.replace(e.c.slot, ":", "") == which))
    else:
        q = q.where(e.c.newsletter == ref).order_by(e.c.number.desc()).limit(1)
    with store.read() as conn:
        found = conn.execute(q).scalars().first()
    if found is None:
        raise UsageError(
            f"no edition {ref!r}: give an id, a newsletter (its latest edition), "
            "NEWSLETTER/NUMBER or NEWSLETTER/SLOT; `feedpub digest list` shows them"
        )
    return int(found)


def ledger_status(store: Store, edition_id: int) -> LedgerStatus:
    e, d = s.editions, s.deliveries
    with store.read() as conn:
        ed = conn.execute(sa.select(e).where(e.c.id == edition_id)).one()
        counts = dict.fromkeys(STATUSES, 0)
        for st, n in conn.execute(
            sa.select(d.c.status, sa.func.count())
            .where(d.c.edition_id == edition_id)
            .group_by(d.c.status)
        ):
            counts[str(st)] = int(n)
        attempts, next_attempt = conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(d.c.attempts), 0),
                sa.select(sa.func.min(d.c.next_attempt))
                .where(d.c.edition_id == edition_id, d.c.status == "failed")
                .scalar_subquery(),
            ).where(d.c.edition_id == edition_id)
        ).one()
        errors = [
            (str(msg), int(n))
            for msg, n in conn.execute(
                sa.select(d.c.last_error, sa.func.count().label("n"))
                .where(
                    d.c.edition_id == edition_id,
                    d.c.last_error.is_not(None),
                    d.c.status.in_(("failed", "bounced", "queued")),
                )
                .group_by(d.c.last_error)
                .order_by(sa.desc("n"))
                .limit(5)
            )
        ]
        issue = (
            None
            if ed.status == "skipped"
            else int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        e.c.newsletter == ed.newsletter,
                        e.c.status != "skipped",
                        e.c.number <= ed.number,
                    )
                ).scalar_one()
            )
        )
    if next_attempt is not None and isinstance(next_attempt, str):  # raw SQLite text
        next_attempt = s.UTCDateTime().process_result_value(next_attempt, None)  # type: ignore[arg-type]
    return LedgerStatus(
        ed.id,
        ed.newsletter,
        ed.number,
        ed.slot,
        ed.status,
        ed.created,
        ed.finished,
        counts,
        int(attempts),
        next_attempt,
        errors,
        issue,
    )
