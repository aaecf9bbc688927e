"""``feedpub bounces list`` and ``feedpub bounces undo ID``: review what ingest decided
and reverse it. An undo restores what that message changed, where nothing changed it
again since (an undo never overrides a later decision), and marks the message undone
(it no longer counts towards soft-bounce windows or rates; ingesting it again still
changes nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.errors import UsageError


@dataclass(frozen=True, slots=True)
class BounceRow:
    id: int
    received: datetime
    source: str
    kind: str
    detector: str
    status_code: str | None
    recipient: str | None
    edition_id: int | None
    subscriber_id: int | None
    newsletter: str | None
    action: str
    note: str
    undone: datetime | None
    effects: dict[str, Any]


def _row(r: Any) -> BounceRow:
    return BounceRow(
        r.id, r.received, r.source, r.kind, r.detector, r.status_code, r.recipient,
        r.edition_id, r.subscriber_id, r.newsletter, r.action, r.note, r.undone,
        dict(r.effects or {}),
    )  # fmt: skip


_COLUMNS = [c for c in s.bounces.c if c.name != "raw"]


def listing(
    conn: Connection,
    *,
    kind: str | None = None,
    acted: bool = False,
    limit: int = 50,
) -> list[BounceRow]:
    """Newest first. ``acted``: only messages that changed something."""
    b = s.bounces
    q = sa.select(*_COLUMNS).order_by(b.c.id.desc()).limit(limit)
    if kind is not None:
        q = q.where(b.c.kind == kind)
    if acted:
        q = q.where(b.c.action.not_in(("ignored", "unmatched", "forged")))
    return [_row(r) for r in conn.execute(q)]


def raw_message(conn: Connection, bounce_id: int) -> bytes | None:
    b = s.bounces
    found = conn.execute(sa.select(b.c.raw).where(b.c.id == bounce_id)).first()
    if found is None:
        raise UsageError(f"no bounce message {bounce_id}; `feedpub bounces list` shows them")
    return bytes(found.raw) if found.raw is not None else None


def undo(conn: Connection, bounce_id: int, now: datetime) -> list[str]:
    """Reverse what message ``bounce_id`` did. Returns what was restored."""
    b, sub, t = s.bounces, s.subscribers, s.subscriptions
    r = conn.execute(sa.select(*_COLUMNS).where(b.c.id == bounce_id)).first()
    if r is None:
        raise UsageError(f"no bounce message {bounce_id}; `feedpub bounces list` shows them")
    if r.undone is not None:
        raise UsageError(
            f"bounce message {bounce_id} was already undone ({r.undone:%Y-%m-%d %H:%M} UTC)"
        )
    effects: dict[str, Any] = dict(r.effects or {})
    done: list[str] = []
    sid = r.subscriber_id
    if sid is not None:
        if effects.get("hard_bounces"):
            conn.execute(
                sa.update(sub)
                .where(sub.c.id == sid, sub.c.hard_bounces > 0)
                .values(hard_bounces=sub.c.hard_bounces - 1)
            )
            done.append("hard-bounce count lowered")
        status = effects.get("status")
        if status:
            old, new = status
            n = conn.execute(
                sa.update(sub)
                .where(sub.c.id == sid, sub.c.status == new)
                .values(status=old, updated=now)
            ).rowcount
            done.append(
                f"status {new} -> {old}" if n else f"status left as is (changed since {new})"
            )
        for newsletter, old in (effects.get("subscriptions") or {}).items():
            n = conn.execute(
                sa.update(t)
                .where(
                    t.c.subscriber_id == sid,
                    t.c.newsletter == newsletter,
                    t.c.status == "unsubscribed",
                )
                .values(status=old, updated=now)
            ).rowcount
            if n:
                done.append(f"{newsletter}: subscription {old} again")
    suppressed = effects.get("suppressed")
    if suppressed:
        n = conn.execute(
            sa.delete(s.suppressions).where(
                s.suppressions.c.address_hash == suppressed,
                s.suppressions.c.bounce_id == bounce_id,
            )
        ).rowcount
        done.append(
            "removed from the suppression list" if n else "suppression left (changed since)"
        )
    queue_id = effects.get("queue")
    if queue_id:
        done.append(f"queued mail {queue_id} stays as it is (resend by signing up again)")
    conn.execute(
        sa.update(b).where(b.c.id == bounce_id).values(undone=now, action=r.action + " (undone)")
    )
    return done or ["nothing had changed; marked undone"]
