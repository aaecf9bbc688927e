"""``digest test NEWSLETTER --to ADDRESS``: one message of the next edition, sent through
the configured messenger outside the ledger (no edition is frozen, nothing is recorded).

The message is the next edition as ``digest preview`` would render it, addressed to
ADDRESS with every beat the edition holds, its Subject prefixed "[test]" and a Message-ID
of its own, so a relay or a mailbox never confuses it with the real edition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from feedpub.atomicfile import write_atomic
from feedpub.config import Config
from feedpub.delivery.base import OutgoingMessage
from feedpub.delivery.factory import open_messenger
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.digest import subscribers as subs
from feedpub.digest.compose import Recipient
from feedpub.digest.freeze import newsletter_or_error
from feedpub.digest.preview import build_preview
from feedpub.digest.tokens import from_address, from_domain, tokens_for
from feedpub.store import Store


@dataclass(frozen=True, slots=True)
class TestMail:
    recipient: str
    message_id: str
    backend: str
    path: Path | None  # the .eml written (outbox backend)
    articles: int


def send_test(config: Config, store: Store, newsletter: str, to: str, *, now: datetime) -> TestMail:
    nl = newsletter_or_error(config, newsletter)
    address = subs.normalize_email(to)
    tokens = tokens_for(config)
    p = build_preview(config, store, nl, now=now, tokens=tokens)
    assert p.builder.composer is not None
    selection = tuple(b for b, _ in p.plan.sections) or config.newsletter_beats(nl)
    domain = from_domain(nl.from_)
    msgid = f"test.{nl.slug}.{now.astimezone(UTC):%Y%m%dT%H%M%S%f}@{domain}"
    data = p.builder.composer.compose(
        p.builder.prepared(selection), Recipient(0, address, ""), msgid
    )
    data = data.replace(b"\r\nSubject: ", b"\r\nSubject: [test] ", 1)
    if data.startswith(b"Subject: "):
        data = b"Subject: [test] " + data[len(b"Subject: ") :]
    message = OutgoingMessage(0, 0, from_address(nl.from_), address, msgid, data)
    backend = config.delivery.backend
    if backend == "outbox":
        path = config.resolve(config.delivery.outbox_dir) / nl.slug / "test" / f"{msgid}.eml"
        write_atomic(path, data)
        return TestMail(address, msgid, backend, path, p.article_count)
    messenger = open_messenger(config, store, now)
    assert not isinstance(messenger, OutboxMessenger)
    try:
        messenger.send(message)
    finally:
        messenger.close()
    return TestMail(address, msgid, backend, None, p.article_count)
