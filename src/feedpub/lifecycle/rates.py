"""Bounce and complaint rates per edition and per newsletter, for ``feedpub status`` and
``digest status``, with a warning above the mailbox providers' thresholds (Gmail and
Yahoo: complaints under 0.3% — ``[bounces] complaint_warn``; bounces ``bounce_warn``,
default 2%).

- *delivered*: ledger rows the relay accepted (``sent``) or refused (``bounced``);
- *bounces*: ledger rows refused at send time (``bounced``) plus hard bounces that came
  back later by mail (``bounces`` table, not undone), once per (edition, subscriber);
  soft bounces are counted apart;
- *complaints*: ARF complaints mapped to the edition, once per (edition, subscriber).
A newsletter's rates add up its editions created within ``[bounces] rate_window``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.config import Config


@dataclass(frozen=True, slots=True)
class Rates:
    delivered: int
    bounced: int  # refused at send time + hard bounces by mail
    soft: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.delivered if self.delivered else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.delivered if self.delivered else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "bounced": self.bounced,
            "soft_bounces": self.soft,
            "complaints": self.complaints,
            "bounce_rate": round(self.bounce_rate, 6),
            "complaint_rate": round(self.complaint_rate, 6),
        }


def edition_rates(conn: Connection, edition_ids: list[int]) -> dict[int, Rates]:
    if not edition_ids:
        return {}
    d, b = s.deliveries, s.bounces
    ledger: dict[int, dict[str, int]] = {}
    for eid, status, n in conn.execute(
        sa.select(d.c.edition_id, d.c.status, sa.func.count())
        .where(d.c.edition_id.in_(edition_ids), d.c.status.in_(("sent", "bounced")))
        .group_by(d.c.edition_id, d.c.status)
    ):
        ledger.setdefault(int(eid), {})[str(status)] = int(n)
    mailed: dict[int, dict[str, set[Any]]] = {}
    for eid, sid, kind, bid in conn.execute(
        sa.select(b.c.edition_id, b.c.subscriber_id, b.c.kind, b.c.id).where(
            b.c.edition_id.in_(edition_ids),
            b.c.kind.in_(("hard", "soft", "complaint")),
            b.c.undone.is_(None),
        )
    ):
        # an erased subscriber's rows have no subscriber: count each message once
        mailed.setdefault(int(eid), {}).setdefault(str(kind), set()).add(
            sid if sid is not None else f"b{bid}"
        )
    out = {}
    for eid in edition_ids:
        c = ledger.get(eid, {})
        m = mailed.get(eid, {})
        out[eid] = Rates(
            delivered=c.get("sent", 0) + c.get("bounced", 0),
            bounced=c.get("bounced", 0) + len(m.get("hard", set())),
            soft=len(m.get("soft", set())),
            complaints=len(m.get("complaint", set())),
        )
    return out


def newsletter_rates(conn: Connection, newsletter: str, since: datetime) -> Rates:
    e = s.editions
    ids = [
        int(i)
        for i in conn.execute(
            sa.select(e.c.id).where(e.c.newsletter == newsletter, e.c.created >= since)
        ).scalars()
    ]
    per = edition_rates(conn, ids)
    return Rates(
        sum(r.delivered for r in per.values()),
        sum(r.bounced for r in per.values()),
        sum(r.soft for r in per.values()),
        sum(r.complaints for r in per.values()),
    )


def warnings_for(config: Config, what: str, r: Rates) -> list[str]:
    """Warnings when a rate is above its threshold (nothing for an empty denominator)."""
    out = []
    b = config.bounces
    if r.delivered and r.complaint_rate > b.complaint_warn:
        out.append(
            f"{what}: complaint rate {r.complaint_rate:.2%} ({r.complaints} of {r.delivered}) "
            f"is above {b.complaint_warn:.1%}, the limit Gmail and Yahoo set for bulk senders"
        )
    if r.delivered and r.bounce_rate > b.bounce_warn:
        out.append(
            f"{what}: bounce rate {r.bounce_rate:.2%} ({r.bounced} of {r.delivered}) is above "
            f"{b.bounce_warn:.1%}; mailbox providers throttle senders whose lists bounce"
        )
    return out


def health(
    conn: Connection, config: Config, now: datetime, edition_ids: list[int]
) -> tuple[dict[str, Any], list[str]]:
    """What ``feedpub status`` shows: rates per newsletter (over ``rate_window``) and per
    listed edition, and the warnings above the thresholds."""
    since = now - config.bounces.rate_window
    warnings: list[str] = []
    newsletters = {}
    for n in config.newsletters:
        r = newsletter_rates(conn, n.slug, since)
        newsletters[n.slug] = r.to_json()
        warnings.extend(
            warnings_for(config, f"{n.slug} (last {config.bounces.rate_window.days} days)", r)
        )
    per = edition_rates(conn, edition_ids)
    return (
        {
            "window_days": config.bounces.rate_window.days,
            "newsletters": newsletters,
            "editions": {str(k): v.to_json() for k, v in per.items()},
        },
        warnings,
    )
