"""Sending the mail queue: compose each confirmation or welcome message from our
templates (Jinja2 + MJML through ``digest.render.Renderer``: ``signup_confirm.*``,
``signup_welcome.*``, overridable in ``[output] templates_dir``) and hand it to the
configured backend, with the VERP return path ``bounces+q{id}.{mac}@domain``.

Called by the daemon every ``[signup] queue_every`` and by ``digest send`` before an
edition; cheap when the queue is empty (one indexed query, no connection opened).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.atomicfile import write_atomic
from feedpub.clock import Clock
from feedpub.config import Config
from feedpub.delivery.base import Messenger, OutgoingMessage
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import LinkMaker, Tokens, ascii_from, from_domain, tokens_for
from feedpub.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ServerUnavailableError,
    TemporaryDeliveryError,
)
from feedpub.lifecycle import mailqueue
from feedpub.lifecycle.optin import make_token
from feedpub.lifecycle.verp import Verp
from feedpub.links import confirm_base, signup_url
from feedpub.store import Store

log = logging.getLogger("feedpub.lifecycle")

TEMPLATES = {
    "confirm": ("signup_confirm.mjml.j2", "signup_confirm.txt.j2"),
    "welcome": ("signup_welcome.mjml.j2", "signup_welcome.txt.j2"),
}


class Cancelled(Exception):
    """The queued message has nothing left to say (its sign-up expired or was erased)."""


@dataclass
class QueueReport:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    cancelled: int = 0
    paused: bool = False
    errors: list[str] = field(default_factory=list)


class QueueOutbox:
    """The outbox backend for queued mail: ``{outbox_dir}/_mail/{kind}/{id}.eml``, with the
    ``Return-Path`` header a final MTA would add (RFC 5321 §4.4)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, message: OutgoingMessage) -> Path:
        kind = message.message_id.split(".", 1)[0]
        return self.folder / "_mail" / kind / f"{message.subscriber_id}.eml"

    def send(self, message: OutgoingMessage) -> None:
        data = f"Return-Path: <{message.envelope_from}>\r\n".encode("ascii") + message.data
        try:
            write_atomic(self.path_for(message), data)
        except OSError as e:
            raise TemporaryDeliveryError(f"outbox {self.folder}: {e.strerror or e}") from e

    def close(self) -> None:
        pass


def open_queue_messenger(config: Config) -> Messenger:
    if config.delivery.backend == "smtp":
        from feedpub.delivery.smtp import SmtpMessenger

        return SmtpMessenger.from_config(config)
    return QueueOutbox(config.resolve(config.delivery.outbox_dir))


class Composer:
    def __init__(self, config: Config, tokens: Tokens, verp: Verp) -> None:
        self.config = config
        self.tokens = tokens
        self.verp = verp
        self.renderer = Renderer(config)

    def compose(self, store: Store, mail: mailqueue.QueuedMail, now: datetime) -> OutgoingMessage:
        try:
            nl = self.config.newsletter(mail.newsletter)
        except KeyError:
            raise Cancelled(f"newsletter {mail.newsletter!r} is no longer configured") from None
        ctx: dict[str, object] = {
            "site": {
                "title": self.config.site.title,
                "base_url": self.config.site.base_url,
                "language": self.config.site.language,
            },
            "newsletter": {"slug": nl.slug, "title": nl.title, "description": nl.description},
            "postal_address": nl.postal_address,
        }
        if mail.kind == "confirm":
            subject = f"Confirm your subscription to {nl.title}"
            ctx.update(self._confirm_context(store, mail))
        else:
            subject = f"Welcome to {nl.title}"
            if mail.subscriber_id is None:
                raise Cancelled("welcome message without a subscriber")
            links = LinkMaker(self.config, nl.slug, self.tokens)
            ctx["preferences_url"] = links.preferences_url(mail.subscriber_id)
            ctx["unsubscribe_url"] = links.unsubscribe_url(mail.subscriber_id)
        mjml_name, text_name = TEMPLATES[mail.kind]
        html = self.renderer.page(mjml_name, ctx)
        text = self.renderer.plain(text_name, ctx)
        domain = from_domain(nl.from_)
        msgid = f"{mail.kind}.{mail.id}@{domain}"
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = ascii_from(nl.from_)
        msg["To"] = mail.recipient
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = f"<{msgid}>"
        if nl.reply_to:
            msg["Reply-To"] = ascii_from(nl.reply_to)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        envelope = self.verp.envelope_from(nl, self.verp.token_for_queue(mail.id))
        return OutgoingMessage(0, mail.id, envelope, mail.recipient, msgid, msg.as_bytes())

    def _confirm_context(self, store: Store, mail: mailqueue.QueuedMail) -> dict[str, object]:
        with store.read() as conn:
            row = conn.execute(sa.select(s.signups).where(s.signups.c.id == mail.signup_id)).first()
        if row is None or row.status != "pending":
            raise Cancelled("the sign-up expired, was confirmed or was erased")
        token = make_token(self.tokens, row.id, row.expires)
        nl = self.config.newsletter(row.newsletter)
        beats = [
            b.title
            for b in self.config.beats
            if b.slug in self.config.newsletter_beats(nl) and (not row.beats or b.slug in row.beats)
        ]
        return {
            "confirm_url": f"{confirm_base(self.config)}?t={token}",
            "expires": row.expires.strftime("%d %B %Y, %H:%M UTC"),
            "beats": beats,
            "consent_text": self.config.signup.consent_text,
            "signup_url": signup_url(self.config, row.newsletter) or self.config.site.base_url,
            "name": row.name,
        }


def drain(
    config: Config,
    store: Store,
    *,
    clock: Clock,
    messenger: Messenger | None = None,
    limit: int = 1000,
) -> QueueReport:
    """Send what the queue owes now (at most ``limit`` messages)."""
    report = QueueReport()
    rows = mailqueue.due(store, clock(), limit)
    if not rows:
        return report
    tokens = tokens_for(config)
    composer = Composer(config, tokens, Verp(config.token_key(), config))
    own = messenger is None
    messenger = messenger or open_queue_messenger(config)
    smtp = config.delivery.smtp
    try:
        for mail in rows:
            now = clock()
            if not mailqueue.claim(store, mail, now):
                continue
            attempts = mail.attempts + 1
            try:
                message = composer.compose(store, mail, now)
            except Cancelled as e:
                mailqueue.record(
                    store,
                    mail.id,
                    status="cancelled",
                    now=now,
                    attempts=mail.attempts,
                    error=str(e),
                )
                report.cancelled += 1
                continue
            except Exception as e:  # a template bug must not lose the row
                _failed(
                    store,
                    mail,
                    attempts,
                    clock(),
                    smtp.max_attempts,
                    smtp.retry_base,
                    f"compose: {e!r}",
                    report,
                )
                continue
            try:
                messenger.send(message)
            except ServerUnavailableError as e:
                mailqueue.record(
                    store,
                    mail.id,
                    status=mail.status if mail.status != "sending" else "queued",
                    now=clock(),
                    attempts=mail.attempts,
                    error=str(e),
                )
                report.paused = True
                report.errors.append(str(e))
                break
            except PermanentDeliveryError as e:
                mailqueue.record(
                    store, mail.id, status="bounced", now=clock(), attempts=attempts, error=str(e)
                )
                report.bounced += 1
            except DeliveryError as e:
                _failed(
                    store,
                    mail,
                    attempts,
                    clock(),
                    smtp.max_attempts,
                    smtp.retry_base,
                    str(e),
                    report,
                )
            else:
                mailqueue.record(store, mail.id, status="sent", now=clock(), attempts=attempts)
                report.sent += 1
    finally:
        if own:
            messenger.close()
    if report.sent or report.failed or report.bounced:
        log.info(
            "mail queue sent",
            extra={"sent": report.sent, "failed": report.failed, "bounced": report.bounced},
        )
    return report


def _failed(
    store: Store,
    mail: mailqueue.QueuedMail,
    attempts: int,
    now: datetime,
    max_attempts: int,
    retry_base: timedelta,
    error: str,
    report: QueueReport,
) -> None:
    if attempts >= max_attempts:
        mailqueue.record(
            store,
            mail.id,
            status="bounced",
            now=now,
            attempts=attempts,
            error=f"gave up after {attempts} attempts: {error}",
        )
        report.bounced += 1
        return
    mailqueue.record(
        store, mail.id, status="failed", now=now, attempts=attempts,
        next_attempt=now + retry_base * 2 ** (attempts - 1), error=error,
    )  # fmt: skip
    report.failed += 1
    report.errors.append(error)
