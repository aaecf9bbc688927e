"""Delivering an edition: freeze it (or find it), deliver what its ledger still owes through
the DeliveryManager, then publish it to the web archive. ``--dry-run`` composes every
message and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.clock import Clock, running_from
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.base import Messenger, OutgoingMessage
from feedpub.delivery.factory import open_messenger
from feedpub.delivery.manager import DeliveryManager, DeliveryReport, LedgerRow
from feedpub.delivery.outbox import edition_key
from feedpub.digest.archive import newsletter_folder, write_archive
from feedpub.digest.compose import Recipient
from feedpub.digest.freeze import choose_slot, freeze, newsletter_or_error
from feedpub.digest.frozen import edition_names, issue_number, load_builder
from feedpub.digest.preview import build_preview
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import Tokens, tokens_for
from feedpub.digest.unfinished import unfinished_editions, unfinished_manual
from feedpub.lifecycle.verp import Verp
from feedpub.store import Store

Progress = Callable[[DeliveryReport], None]


@dataclass
class SendReport:
    newsletter: str
    slot: str
    edition_id: int | None = None
    number: int | None = None  # the "No." readers see (None: a skipped edition)
    status: str = ""  # edition status after this run (skipped/sent/sending/paused; "dry-run")
    created: bool = False  # False: the edition existed (resumed or already done)
    articles: int = 0
    recipients: int = 0
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    remaining: int = 0
    elsewhere: int = 0  # of remaining: in flight under another live sender's claim
    lost: int = 0  # results not recorded: this run's claims were taken over (it stalled)
    archive: Path | None = None
    errors: list[str] = field(default_factory=list)
    earlier: list[SendReport] = field(default_factory=list)  # other editions taken up first


def cancel_unsubscribed(store: Store, edition_id: int, newsletter: str, now: datetime) -> int:
    """Rows not yet sent whose subscriber left (unsubscribed, bounced, purged) after the
    edition froze become "cancelled": a paused or retried edition never mails someone who
    unsubscribed meanwhile. Rows in flight ("sending") are left to the manager."""
    d, sub, subs_t = s.deliveries, s.subscribers, s.subscriptions
    still_active = (
        sa.select(sub.c.id)
        .join(subs_t, subs_t.c.subscriber_id == sub.c.id)
        .where(
            sub.c.status == "active",
            subs_t.c.newsletter == newsletter,
            subs_t.c.status == "active",
        )
    )
    with store.begin() as conn:
        res = conn.execute(
            sa.update(d)
            .where(
                d.c.edition_id == edition_id,
                d.c.status.in_(("queued", "failed")),
                d.c.subscriber_id.not_in(still_active),
            )
            .values(status="cancelled", last_error="unsubscribed before delivery", updated=now)
        )
        return int(res.rowcount or 0)


def cancel_emptied(store: Store, edition_id: int, live_beats: set[str], now: datetime) -> int:
    """Rows not yet sent whose beats have no story left (every one retracted after the
    edition froze) become "cancelled": nobody gets a digest with nothing in it."""
    d = s.deliveries
    with store.begin() as conn:
        rows = conn.execute(
            sa.select(d.c.subscriber_id, d.c.selection).where(
                d.c.edition_id == edition_id, d.c.status.in_(("queued", "failed"))
            )
        ).all()
        emptied = [r.subscriber_id for r in rows if not set(r.selection.split(";")) & live_beats]
        for i in range(0, len(emptied), 500):
            conn.execute(
                sa.update(d)
                .where(
                    d.c.edition_id == edition_id,
                    d.c.subscriber_id.in_(emptied[i : i + 500]),
                    d.c.status.in_(("queued", "failed")),
                )
                .values(
                    status="cancelled",
                    last_error="every story for this reader was retracted before delivery",
                    updated=now,
                )
            )
    return len(emptied)


def _owed_selections(store: Store, edition_id: int) -> list[tuple[str, ...]]:
    """The distinct beat selections of the edition's rows not yet sent (as the delivery
    manager reads them)."""
    d = s.deliveries
    with store.read() as conn:
        values = conn.execute(
            sa.select(d.c.selection)
            .where(d.c.edition_id == edition_id, d.c.status.in_(("queued", "sending", "failed")))
            .distinct()
        ).scalars()
        return [tuple(b for b in v.split(";") if b) for v in values]


# ---- the entry point -----------------------------------------------------------------------
def send_newsletter(
    config: Config,
    store: Store,
    newsletter_slug: str,
    *,
    now: datetime,
    clock: Clock | None = None,
    slot: datetime | None = None,
    key: str | None = None,
    messenger: Messenger | None = None,
    dry_run: bool = False,
    extra: bool = False,
    take_up_others: bool = True,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    fence: Callable[[Connection], None] | None = None,
) -> SendReport:
    """Freeze (or find) the edition of this slot, deliver what its ledger still owes, and
    publish it to the web archive once every row is sent or bounced.

    ``now`` decides the slot and the edition's contents; ``clock`` (default: a clock that
    starts at ``now`` and runs) stamps the ledger and judges retries while the edition is
    sent. ``key``: resume exactly this existing edition (a schedule slot or a manual key).
    ``take_up_others``: first finish or resume the newsletter's other unfinished editions
    (``digest.unfinished``; their reports in ``earlier``). ``progress`` is called with the
    running DeliveryReport after each message; ``should_stop`` before each new message (a
    shutting-down daemon). ``fence``: see :func:`freeze` (the daemon's leader lease)."""
    nl = newsletter_or_error(config, newsletter_slug)
    clock = clock or running_from(now)
    tokens = tokens_for(config)  # a missing key stops us before anything is frozen
    lease = config.delivery.lease
    if key is None:
        key = choose_slot(nl, now, slot, extra)
        if key.startswith("manual-"):  # finish an interrupted manual edition instead
            key = unfinished_manual(store, nl.slug, now, lease) or key
    report = SendReport(newsletter=nl.slug, slot=key)
    if dry_run:
        return _dry_run(config, store, nl, key, now, tokens, report)
    own = messenger is None
    if messenger is None:  # [delivery] backend; SMTP secrets and DKIM key checked here
        messenger = open_messenger(config, store, now)
    try:
        if take_up_others:
            for other in _others(config, store, nl, key, now):
                if should_stop is not None and should_stop():
                    return report
                sub = SendReport(newsletter=nl.slug, slot=other)
                _send_edition(config, store, nl, other, now, clock, tokens, sub, messenger,
                              progress, should_stop, fence)  # fmt: skip
                report.earlier.append(sub)
                if sub.status == "paused":  # no relay usable: the rest would pause too
                    report.status = "paused"
                    return report
        return _send_edition(config, store, nl, key, now, clock, tokens, report, messenger,
                             progress, should_stop, fence)  # fmt: skip
    finally:
        if own:
            messenger.close()


def _others(
    config: Config, store: Store, nl: NewsletterConfig, key: str, now: datetime
) -> list[str]:
    """Keys of this newsletter's other unfinished editions to take up now, oldest first."""
    grace = nl.misfire_grace if nl.misfire_grace is not None else config.schedule.misfire_grace
    window = max(grace, config.delivery.smtp.max_age)
    return [
        u.slot
        for u in unfinished_editions(store, now, config.delivery.lease, nl.slug)
        if u.slot != key and u.within(window, now)
    ]


def _send_edition(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    key: str,
    now: datetime,
    clock: Clock,
    tokens: Tokens,
    report: SendReport,
    messenger: Messenger,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    fence: Callable[[Connection], None] | None = None,
) -> SendReport:
    edition_id, created = freeze(config, store, nl, key, now, fence)
    report.edition_id, report.created = edition_id, created
    with store.read() as conn:
        row = conn.execute(sa.select(s.editions).where(s.editions.c.id == edition_id)).one()
        if row.status != "skipped":
            report.number = issue_number(conn, nl.slug, row.number)
    report.articles, report.recipients = row.article_count, row.recipient_count
    if row.status in ("skipped", "sent"):
        report.status = row.status
        page = newsletter_folder(config, nl.slug) / f"{edition_key(row.slot)}.html"
        if row.status == "sent" and not page.exists():  # a crash after the last message
            builder = load_builder(config, store, nl, edition_id, None)
            report.archive = write_archive(config, store, nl, builder=builder)
        return report
    cancel_unsubscribed(store, edition_id, nl.slug, now)
    renderer = Renderer(config)
    builder = load_builder(config, store, nl, edition_id, tokens, renderer)
    if row.article_count:  # an edition sent empty on purpose (skip_when_empty off) stays so
        cancel_emptied(store, edition_id, {beat for beat, _ in builder.sections}, now)
    smtp = config.delivery.smtp
    manager = DeliveryManager(
        store,
        messenger,
        clock=clock,
        max_attempts=smtp.max_attempts,
        max_age=smtp.max_age,
        retry_base=smtp.retry_base,
        lease=config.delivery.lease,
        hard_bounce_limit=smtp.hard_bounce_limit,
    )
    # Render every selection still owed before a row is claimed: a broken (user) template
    # is a configuration error with the ledger untouched, not a failure of every row.
    for selection in _owed_selections(store, edition_id):
        builder.prepared(selection)
    names = edition_names(store, edition_id)
    verp = Verp(config.token_key(), config)  # MAIL FROM bounces+{token}@: names the row

    def compose(r: LedgerRow) -> OutgoingMessage:
        assert builder.composer is not None
        prepared = builder.prepared(r.selection)
        rec = Recipient(r.subscriber_id, r.email, names.get(r.subscriber_id, ""))
        data = builder.composer.compose(prepared, rec, r.message_id)
        envelope_from = verp.envelope_from(
            nl, verp.token_for_delivery(r.edition_id, r.subscriber_id)
        )
        return OutgoingMessage(
            r.edition_id, r.subscriber_id, envelope_from, r.email, r.message_id, data
        )

    dr = manager.deliver(edition_id, compose, progress=progress, should_stop=should_stop)
    report.sent, report.failed, report.bounced = dr.sent, dr.failed, dr.bounced
    report.remaining, report.status, report.errors = dr.remaining, dr.edition_status, dr.errors
    report.elsewhere, report.lost = dr.elsewhere, dr.lost
    if dr.edition_status == "sent":
        report.archive = write_archive(config, store, nl, builder=builder)
    return report


def _dry_run(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    key: str,
    now: datetime,
    tokens: Tokens,
    report: SendReport,
) -> SendReport:
    """Compose every message the edition would send, change nothing."""
    e = s.editions
    with store.read() as conn:
        existing = conn.execute(
            sa.select(e).where(e.c.newsletter == nl.slug, e.c.slot == key)
        ).first()
        if existing is not None:
            report.edition_id = existing.id
            if existing.status != "skipped":
                report.number = issue_number(conn, nl.slug, existing.number)
            report.status = f"dry-run: edition exists ({existing.status})"
            remaining = conn.execute(
                sa.select(sa.func.count()).where(
                    s.deliveries.c.edition_id == existing.id,
                    s.deliveries.c.status.in_(("queued", "sending", "failed")),
                )
            ).scalar_one()
            report.remaining = int(remaining)
            return report
    preview = build_preview(config, store, nl, now=now, tokens=tokens, slot=key)
    report.articles = preview.article_count
    report.recipients = len(preview.recipients)
    report.status = "dry-run: would be skipped" if preview.skipped else "dry-run"
    for rec, sel in preview.recipients:
        preview.builder.composer.compose(  # type: ignore[union-attr]
            preview.builder.prepared(sel), rec
        )
    return report
