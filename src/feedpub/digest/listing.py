"""``digest list``: every edition with its article and delivery counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.store import Store


@dataclass(frozen=True, slots=True)
class EditionSummary:
    id: int
    newsletter: str
    slot: str
    number: int
    status: str
    created: datetime
    finished: datetime | None
    articles: int
    recipients: int
    counts: dict[str, int]
    issue: int | None = None  # the "No." readers see (issue_number); None when skipped


def list_editions(store: Store, newsletter: str | None = None) -> list[EditionSummary]:
    e, d = s.editions, s.deliveries
    with store.read() as conn:
        q = sa.select(e).order_by(e.c.newsletter, e.c.number.desc())
        if newsletter is not None:
            q = q.where(e.c.newsletter == newsletter)
        rows = conn.execute(q).all()
        counts: dict[int, dict[str, int]] = {}
        for eid, st, n in conn.execute(
            sa.select(d.c.edition_id, d.c.status, sa.func.count()).group_by(
                d.c.edition_id, d.c.status
            )
        ):
            counts.setdefault(int(eid), {})[str(st)] = int(n)
    issues: dict[int, int | None] = {}
    seen: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: (r.newsletter, r.number)):  # as issue_number counts
        if r.status == "skipped":
            issues[r.id] = None
        else:
            seen[r.newsletter] = issues[r.id] = seen.get(r.newsletter, 0) + 1
    return [
        EditionSummary(
            r.id,
            r.newsletter,
            r.slot,
            r.number,
            r.status,
            r.created,
            r.finished,
            r.article_count,
            r.recipient_count,
            counts.get(r.id, {}),
            issues[r.id],
        )
        for r in rows
    ]
