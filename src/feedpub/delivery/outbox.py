"""Outbox backend (the embedded default): one ``.eml`` per message, written atomically
into ``{outbox_dir}/{newsletter}/{edition}/{subscriber_id}.eml``.

The file name is a function of (edition, subscriber), so a resend after a crash
rewrites the same file with the same bytes (the Message-ID is deterministic too): the
outbox never holds two copies of one subscriber's edition. Each file starts with the
``Return-Path`` header (the envelope sender) a delivering MTA would write.

With ``[delivery.dkim]`` configured, each message is signed exactly as the SMTP backend
signs it, so an operator can check the signature on the outbox (``dkimverify``) before
switching to SMTP. (A resend then differs only in the signature's ``t=`` timestamp.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.atomicfile import write_atomic
from feedpub.delivery.base import OutgoingMessage
from feedpub.errors import PermanentDeliveryError, TemporaryDeliveryError
from feedpub.store import Store

if TYPE_CHECKING:
    from feedpub.delivery.dkim import DkimSigner

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def edition_key(slot: str) -> str:
    """File- and URL-safe name of an edition from its slot key:
    ``2026-11-26T07:00Z`` -> ``2026-11-26T0700Z``; ``manual-20261126T131400Z`` unchanged."""
    return _UNSAFE.sub("", slot)


class OutboxMessenger:
    def __init__(self, folder: Path, store: Store, *, signer: DkimSigner | None = None) -> None:
        self.folder = folder
        self.store = store
        self._signer = signer
        self._folders: dict[int, Path] = {}

    def edition_folder(self, edition_id: int) -> Path:
        found = self._folders.get(edition_id)
        if found is None:
            with self.store.read() as conn:
                row = conn.execute(
                    sa.select(s.editions.c.newsletter, s.editions.c.slot).where(
                        s.editions.c.id == edition_id
                    )
                ).first()
            if row is None:
                raise PermanentDeliveryError(f"edition {edition_id} does not exist")
            found = self.folder / row.newsletter / edition_key(row.slot)
            self._folders[edition_id] = found
        return found

    def path_for(self, message: OutgoingMessage) -> Path:
        return self.edition_folder(message.edition_id) / f"{message.subscriber_id}.eml"

    def send(self, message: OutgoingMessage) -> None:
        data = self._signer.sign(message.data) if self._signer else message.data
        # The Return-Path a final MTA would add (RFC 5321 §4.4): the envelope sender, the
        # VERP address that names this ledger row (docs/bounces.md).
        head = f"Return-Path: <{message.envelope_from}>\r\n".encode("ascii")
        try:
            write_atomic(self.path_for(message), head + data)
        except OSError as e:  # disk full, permissions: worth another try later
            raise TemporaryDeliveryError(f"outbox {self.folder}: {e.strerror or e}") from e

    def close(self) -> None:
        self._folders.clear()
