"""Freezing an edition: the slot it belongs to, what goes in it (the pure decider in
``digest.edition`` given what the store holds) and one transaction that writes the edition,
its articles and a queued ledger row per recipient.

Editions are unique per (newsletter, slot): the scheduler and a manual ``digest send``
landing on the same slot find one edition; the second only resumes its ledger. That is
also how a crashed send resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import planner_stats
from feedpub import schema as s
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.outbox import edition_key
from feedpub.digest import subscribers as subs
from feedpub.digest.compose import message_id
from feedpub.digest.edition import (
    LATE_ARRIVAL,
    EditionPlan,
    edition_since,
    plan_edition,
    selection_for,
)
from feedpub.digest.tokens import from_domain
from feedpub.errors import UsageError
from feedpub.lifecycle import suppression
from feedpub.slots import latest_slot, slot_key
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus


def newsletter_or_error(config: Config, slug: str) -> NewsletterConfig:
    try:
        return config.newsletter(slug)
    except KeyError:
        known = ", ".join(n.slug for n in config.newsletters) or "(none configured)"
        raise UsageError(f"unknown newsletter {slug!r}; configured: {known}") from None


def choose_slot(nl: NewsletterConfig, now: datetime, slot: datetime | None, extra: bool) -> str:
    if extra:
        return f"manual-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    if slot is None:
        slot = latest_slot(nl.schedule, nl.timezone, now)
    if slot is None:  # no scheduled slot yet (e.g. a yearly schedule): a manual one
        return f"manual-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return slot_key(slot)


# ---- reading state -----------------------------------------------------------------------
def _previous(conn: Connection, newsletter: str) -> Any:
    e = s.editions
    return conn.execute(
        sa.select(e).where(e.c.newsletter == newsletter).order_by(e.c.cutoff.desc()).limit(1)
    ).first()


def _already_sent(conn: Connection, newsletter: str) -> set[str]:
    e, ea = s.editions, s.edition_articles
    q = sa.select(ea.c.article_id).join(e, e.c.id == ea.c.edition_id)
    return {r[0] for r in conn.execute(q.where(e.c.newsletter == newsletter))}


def plan_for(
    config: Config, conn: Connection, store: Store, nl: NewsletterConfig, now: datetime
) -> tuple[EditionPlan, dict[str, Article]]:
    """Read what the decider needs and run it (no writes)."""
    prev = _previous(conn, nl.slug)
    since = edition_since(prev.cutoff if prev is not None else None, nl.lookback, now)
    beats = config.newsletter_beats(nl)
    a = s.articles
    candidates = store.load_articles(
        conn,
        sa.and_(
            a.c.status == ArticleStatus.PUBLISHED.value,
            a.c.published <= now,
            a.c.beat.in_(beats),
            sa.or_(
                a.c.published > since,
                # late arrivals (see digest.edition); the decider has the last word
                sa.and_(a.c.first_seen > since, a.c.published > since - LATE_ARRIVAL),
            ),
        ),
    )
    plan = plan_edition(
        candidates,
        beats=beats,
        previous_cutoff=prev.cutoff if prev is not None else None,
        lookback=nl.lookback,
        already_sent=_already_sent(conn, nl.slug),
        now=now,
    )
    return plan, {x.id: x for x in candidates}


# ---- freezing ------------------------------------------------------------------------------
def _not_suppressed(
    config: Config, conn: Connection, recipients: list[tuple[int, str, tuple[str, ...]]]
) -> list[tuple[int, str, tuple[str, ...]]]:
    """Recipients whose address is not on the suppression list (feedpub.lifecycle)."""
    if not recipients or not suppression.count(conn):
        return recipients
    blocked = suppression.filter_suppressed(
        conn, suppression.AddressHasher(config.token_key()), [a for _, a, _ in recipients]
    )
    return [r for r in recipients if r[1] not in blocked]


def freeze(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    slot: str,
    now: datetime,
    fence: Callable[[Connection], None] | None = None,
) -> tuple[int, bool]:
    """The edition of (newsletter, slot): its row, its articles and a queued ledger row per
    recipient, all in ONE transaction. Returns (edition id, created).

    Idempotent per slot: the edition is unique per (newsletter, slot), so a second freeze
    of the slot (another process, a new leader after a takeover) finds the first one's
    edition. ``fence`` (the daemon's leader lease) is called in the transaction before a
    new edition is written and raises when this process may no longer freeze."""
    e = s.editions
    domain = from_domain(nl.from_)
    key = edition_key(slot)
    try:
        with store.begin() as conn:
            existing = conn.execute(
                sa.select(e.c.id).where(e.c.newsletter == nl.slug, e.c.slot == slot)
            ).scalar_one_or_none()
            if existing is not None:
                return int(existing), False
            if fence is not None:
                fence(conn)
            plan, _ = plan_for(config, conn, store, nl, now)
            number = int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(e.c.number), 0)).where(
                        e.c.newsletter == nl.slug
                    )
                ).scalar_one()
            )
            nl_beats = config.newsletter_beats(nl)
            edition_beats = set(plan.beats) if not plan.empty else set(nl_beats)
            skipped = plan.empty and nl.skip_when_empty
            ledger = []
            if not skipped:
                for sid, addr, chosen in _not_suppressed(
                    config, conn, subs.active_recipients(conn, nl.slug)
                ):
                    sel = selection_for(chosen, nl_beats, edition_beats)
                    if sel:
                        ledger.append((sid, addr, ";".join(sel)))
            edition_id = conn.execute(
                sa.insert(e).values(
                    newsletter=nl.slug,
                    slot=slot,
                    number=number + 1,
                    status="skipped" if skipped else "frozen",
                    cutoff=plan.cutoff,
                    since=plan.since,
                    created=now,
                    finished=now if skipped else None,
                    article_count=len(plan.article_ids),
                    recipient_count=len(ledger),
                )
            ).inserted_primary_key
            assert edition_id is not None
            edition_id = edition_id[0]
            if plan.article_ids:
                conn.execute(
                    sa.insert(s.edition_articles),
                    [
                        {"edition_id": edition_id, "article_id": aid, "position": i, "beat": beat}
                        for i, (beat, aid) in enumerate(
                            (b, x) for b, ids in plan.sections for x in ids
                        )
                    ],
                )
            if ledger:
                conn.execute(
                    sa.insert(s.deliveries),
                    [
                        {
                            "edition_id": edition_id,
                            "subscriber_id": sid,
                            "email": addr,
                            "selection": sel,
                            "status": "queued",
                            "attempts": 0,
                            "message_id": message_id(nl.slug, key, sid, domain),
                            "updated": now,
                        }
                        for sid, addr, sel in ledger
                    ],
                )
                planner_stats.refresh(conn, [s.deliveries], written=len(ledger))
            return int(edition_id), True
    except sa.exc.IntegrityError:
        # Another process froze this slot between our check and insert (PostgreSQL).
        with store.read() as conn:
            found = conn.execute(
                sa.select(e.c.id).where(e.c.newsletter == nl.slug, e.c.slot == slot)
            ).scalar_one()
        return int(found), False
