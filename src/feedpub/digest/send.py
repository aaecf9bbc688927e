"""Orchestration: freeze an edition (one transaction), deliver it through the ledger,
then publish it to the web archive. Also ``preview`` (changes no state) and ``list``.

Editions are unique per (newsletter, slot): the scheduler and a manual ``digest send``
landing on the same slot find one edition; the second only resumes its ledger. That is
also how a crashed send resumes.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.atomicfile import write_atomic
from feedpub.clock import Clock, running_from
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.base import Messenger, OutgoingMessage
from feedpub.delivery.factory import open_messenger
from feedpub.delivery.manager import DeliveryManager, DeliveryReport, LedgerRow
from feedpub.delivery.outbox import edition_key
from feedpub.digest import subscribers as subs
from feedpub.digest.archive import newsletter_folder, write_archive
from feedpub.digest.build import EditionBuilder, EditionInfo, group_sections
from feedpub.digest.compose import Recipient, message_id
from feedpub.digest.edition import (
    LATE_ARRIVAL,
    EditionPlan,
    edition_since,
    plan_edition,
    selection_for,
)
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import Tokens, from_address, from_domain, tokens_for
from feedpub.errors import UsageError
from feedpub.slots import latest_slot, slot_key
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus

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
    archive: Path | None = None
    errors: list[str] = field(default_factory=list)


def _newsletter(config: Config, slug: str) -> NewsletterConfig:
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


def unfinished_manual(store: Store, newsletter: str, now: datetime) -> str | None:
    """The slot of the oldest unfinished manual edition that owes messages now (queued,
    in flight at a crash, or a retry come due), else None. A manual key is the time of
    the send, so a rerun could never find it by key: without this, a crashed or paused
    ``--extra`` edition would never be finished (the scheduler resumes only slots)."""
    e, d = s.editions, s.deliveries
    due = sa.or_(
        d.c.status.in_(("queued", "sending")),
        sa.and_(
            d.c.status == "failed",
            sa.or_(d.c.next_attempt.is_(None), d.c.next_attempt <= now),
        ),
    )
    with store.read() as conn:
        found = conn.execute(
            sa.select(e.c.slot)
            .where(
                e.c.newsletter == newsletter,
                e.c.slot.startswith("manual-"),
                e.c.status.not_in(("sent", "skipped")),
                sa.exists().where(d.c.edition_id == e.c.id, due),
            )
            .order_by(e.c.created, e.c.id)
            .limit(1)
        ).scalar_one_or_none()
    return None if found is None else str(found)


def slot_time(slot: str, fallback: datetime) -> datetime:
    try:
        return datetime.strptime(slot, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except ValueError:
        return fallback


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


def issue_number(conn: Connection, newsletter: str, number: int | None = None) -> int:
    """The number readers see ("No. 12"): editions that were not skipped, up to and
    including ``number`` (None: the next one). Skipped editions leave no gaps."""
    e = s.editions
    q = sa.select(sa.func.count()).where(e.c.newsletter == newsletter, e.c.status != "skipped")
    if number is not None:
        return int(conn.execute(q.where(e.c.number <= number)).scalar_one())
    return int(conn.execute(q).scalar_one()) + 1


# ---- freezing ------------------------------------------------------------------------------
def freeze(
    config: Config, store: Store, nl: NewsletterConfig, slot: str, now: datetime
) -> tuple[int, bool]:
    """The edition of (newsletter, slot): its row, its articles and a queued ledger row per
    recipient, all in ONE transaction. Returns (edition id, created)."""
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
                for sid, addr, chosen in subs.active_recipients(conn, nl.slug):
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
            return int(edition_id), True
    except sa.exc.IntegrityError:
        # Another process froze this slot between our check and insert (PostgreSQL).
        with store.read() as conn:
            found = conn.execute(
                sa.select(e.c.id).where(e.c.newsletter == nl.slug, e.c.slot == slot)
            ).scalar_one()
        return int(found), False


# ---- loading a frozen edition ------------------------------------------------------------
def load_builder(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    edition_id: int,
    tokens: Tokens | None,
    renderer: Renderer | None = None,
) -> EditionBuilder:
    e, ea = s.editions, s.edition_articles
    with store.read() as conn:
        row = conn.execute(sa.select(e).where(e.c.id == edition_id)).one()
        order = [
            (r.article_id, r.beat)
            for r in conn.execute(
                sa.select(ea.c.article_id, ea.c.beat)
                .where(ea.c.edition_id == edition_id)
                .order_by(ea.c.position)
            )
        ]
        ids = [aid for aid, _ in order]
        # A story retracted after the edition froze is left out of every message not yet
        # sent (and of the archive page): an editor's retraction beats the frozen edition.
        arts = (
            {
                a.id: a
                for a in store.load_articles(conn, s.articles.c.id.in_(ids))
                if a.status is not ArticleStatus.RETRACTED
            }
            if ids
            else {}
        )
        shown_number = issue_number(conn, row.newsletter, row.number)
    info = EditionInfo(
        id=row.id,
        newsletter=row.newsletter,
        slot=row.slot,
        key=edition_key(row.slot),
        number=shown_number,
        date=slot_time(row.slot, row.created),
        created=row.created,
    )
    sections = group_sections(config.newsletter_beats(nl), arts, order)
    return EditionBuilder(config, renderer or Renderer(config), nl, info, sections, tokens)


def _names(store: Store, ids: list[int]) -> dict[int, str]:
    sub = s.subscribers
    out: dict[int, str] = {}
    with store.read() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in conn.execute(sa.select(sub.c.id, sub.c.name).where(sub.c.id.in_(chunk))):
                out[r.id] = r.name
    return out


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


def _edition_names(store: Store, edition_id: int) -> dict[int, str]:
    """Names of the edition's recipients (the address is frozen in the ledger; the name,
    used only in greetings and the To display name, is read when sending)."""
    sub, d = s.subscribers, s.deliveries
    with store.read() as conn:
        q = (
            sa.select(sub.c.id, sub.c.name)
            .join(d, d.c.subscriber_id == sub.c.id)
            .where(d.c.edition_id == edition_id)
        )
        return {r.id: r.name for r in conn.execute(q)}


# ---- the entry point -----------------------------------------------------------------------
def send_newsletter(
    config: Config,
    store: Store,
    newsletter_slug: str,
    *,
    now: datetime,
    clock: Clock | None = None,
    slot: datetime | None = None,
    messenger: Messenger | None = None,
    dry_run: bool = False,
    extra: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SendReport:
    """Freeze (or find) the edition of this slot, deliver what its ledger still owes, and
    publish it to the web archive once every row is sent or bounced.

    ``now`` decides the slot and the edition's contents; ``clock`` (default: a clock that
    starts at ``now`` and runs) stamps the ledger and judges retries while the edition is
    sent. ``progress`` is called with the running DeliveryReport after each message;
    ``should_stop`` before each new message (a shutting-down daemon)."""
    nl = _newsletter(config, newsletter_slug)
    clock = clock or running_from(now)
    tokens = tokens_for(config)  # a missing key stops us before anything is frozen
    key = choose_slot(nl, now, slot, extra)
    if key.startswith("manual-"):  # finish an interrupted manual edition first
        key = unfinished_manual(store, nl.slug, now) or key
    report = SendReport(newsletter=nl.slug, slot=key)
    if dry_run:
        return _dry_run(config, store, nl, key, now, tokens, report)
    own = messenger is None
    if messenger is None:  # [delivery] backend; SMTP secrets and DKIM key checked here
        messenger = open_messenger(config, store, now)
    try:
        return _send_edition(config, store, nl, key, now, clock, tokens, report, messenger,
                             progress, should_stop)  # fmt: skip
    finally:
        if own:
            messenger.close()


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
) -> SendReport:
    edition_id, created = freeze(config, store, nl, key, now)
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
        hard_bounce_limit=smtp.hard_bounce_limit,
    )
    # Render every selection still owed before a row is claimed: a broken (user) template
    # is a configuration error with the ledger untouched, not a failure of every row.
    for selection in _owed_selections(store, edition_id):
        builder.prepared(selection)
    names = _edition_names(store, edition_id)
    envelope_from = from_address(nl.from_)

    def compose(r: LedgerRow) -> OutgoingMessage:
        assert builder.composer is not None
        prepared = builder.prepared(r.selection)
        rec = Recipient(r.subscriber_id, r.email, names.get(r.subscriber_id, ""))
        data = builder.composer.compose(prepared, rec, r.message_id)
        return OutgoingMessage(
            r.edition_id, r.subscriber_id, envelope_from, r.email, r.message_id, data
        )

    dr = manager.deliver(edition_id, compose, progress=progress, should_stop=should_stop)
    report.sent, report.failed, report.bounced = dr.sent, dr.failed, dr.bounced
    report.remaining, report.status, report.errors = dr.remaining, dr.edition_status, dr.errors
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


# ---- preview -------------------------------------------------------------------------------
@dataclass
class Preview:
    builder: EditionBuilder
    plan: EditionPlan
    article_count: int
    skipped: bool
    recipients: list[tuple[Recipient, tuple[str, ...]]]


def build_preview(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    *,
    now: datetime,
    tokens: Tokens,
    slot: str | None = None,
) -> Preview:
    """What the next edition would hold, from a read-only look at the store."""
    key = slot or choose_slot(nl, now, None, False)
    nl_beats = config.newsletter_beats(nl)
    with store.read() as conn:
        plan, arts = plan_for(config, conn, store, nl, now)
        number = issue_number(conn, nl.slug)
        recipients = subs.active_recipients(conn, nl.slug)
    names = _names(store, [r[0] for r in recipients])
    edition_beats = set(plan.beats) if not plan.empty else set(nl_beats)
    skipped = plan.empty and nl.skip_when_empty
    info = EditionInfo(
        id=0,
        newsletter=nl.slug,
        slot=key,
        key=edition_key(key),
        number=number,
        date=slot_time(key, now),
        created=now,
    )
    sections = [(b, [arts[x] for x in ids]) for b, ids in plan.sections]
    builder = EditionBuilder(config, Renderer(config), nl, info, sections, tokens)
    recs: list[tuple[Recipient, tuple[str, ...]]] = []
    if not skipped:
        for sid, addr, chosen in recipients:
            sel = selection_for(chosen, nl_beats, edition_beats)
            if sel:
                recs.append((Recipient(sid, addr, names.get(sid, "")), sel))
    return Preview(builder, plan, len(plan.article_ids), skipped, recs)


@dataclass
class PreviewFiles:
    folder: Path
    html: Path
    text: Path
    eml: Path
    skipped: bool
    articles: int
    recipients: int
    sample: str


def write_preview(
    config: Config,
    store: Store,
    newsletter_slug: str,
    *,
    now: datetime,
    folder: Path | None = None,
    sample_email: str | None = None,
) -> PreviewFiles:
    """``digest preview``: write HTML, text and one .eml for a sample subscriber. No state
    changes (the store is only read)."""
    nl = _newsletter(config, newsletter_slug)
    tokens = tokens_for(config)
    p = build_preview(config, store, nl, now=now, tokens=tokens)
    out = folder or config.resolve(Path("preview") / nl.slug)
    sample: tuple[Recipient, tuple[str, ...]] | None = None
    if sample_email is not None:
        wanted = subs.normalize_email(sample_email)
        sample = next((x for x in p.recipients if x[0].email == wanted), None)
        if sample is None:
            raise UsageError(f"{wanted} gets nothing from this edition of {nl.slug}")
    elif p.recipients:
        sample = p.recipients[0]
    if sample is None:
        sample = (
            Recipient(0, f"reader@{from_domain(nl.from_)}", "Sample Reader"),
            tuple(b for b, _ in p.plan.sections) or config.newsletter_beats(nl),
        )
    rec, sel = sample
    assert p.builder.composer is not None
    data = p.builder.composer.compose(p.builder.prepared(sel), rec)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    parts = {part.get_content_type(): part.get_content() for part in msg.iter_parts()}
    html_path, text_path, eml_path = out / "digest.html", out / "digest.txt", out / "digest.eml"
    for path, ctype in ((html_path, "text/html"), (text_path, "text/plain")):
        write_atomic(path, str(parts[ctype]).replace("\r\n", "\n").encode("utf-8"))
    write_atomic(eml_path, data)
    return PreviewFiles(
        out,
        html_path,
        text_path,
        eml_path,
        p.skipped,
        p.article_count,
        len(p.recipients),
        rec.email,
    )


# ---- listing -------------------------------------------------------------------------------
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
