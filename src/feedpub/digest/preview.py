"""``digest preview``: what the next edition would hold, rendered for a sample subscriber
from a read-only look at the store (no state changes)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from feedpub.atomicfile import write_atomic
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.outbox import edition_key
from feedpub.digest import subscribers as subs
from feedpub.digest.build import EditionBuilder, EditionInfo
from feedpub.digest.compose import Recipient
from feedpub.digest.edition import EditionPlan, selection_for
from feedpub.digest.freeze import choose_slot, newsletter_or_error, plan_for
from feedpub.digest.frozen import issue_number, slot_time, subscriber_names
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import Tokens, from_domain, tokens_for
from feedpub.errors import UsageError
from feedpub.store import Store


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
    names = subscriber_names(store, [r[0] for r in recipients])
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
    nl = newsletter_or_error(config, newsletter_slug)
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
