"""An IMAP mailbox through imapclient: the one module that imports it.

Reads with ``BODY.PEEK[]`` (no ``\\Seen`` flag set: a person reading the same mailbox
sees nothing change), in UID order, from the UID after the last one ingested (kept in
the store per mailbox, reset when the folder's UIDVALIDITY changes). The folder is
opened read-only unless ``delete_processed`` is set; then only our own messages are
flagged ``\\Deleted`` and expunged by UID (UIDPLUS), after they are stored. Mail that
is not ours is never touched (listmonk's POP3 reader deleted everything in the box).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from feedpub.bounces.sources import MAX_MESSAGE, RawMessage
from feedpub.config import Config
from feedpub.config_lifecycle import MailboxConfig
from feedpub.errors import FeedpubError

BATCH = 100


class MailboxError(FeedpubError):
    """The mailbox cannot be reached or read (exit status 1; the next run tries again)."""


def _context(cfg: MailboxConfig, config: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context(
        cafile=str(config.resolve(cfg.ca_file)) if cfg.ca_file else None
    )
    if not cfg.validate_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ImapMailbox:
    def __init__(self, config: Config, cfg: MailboxConfig) -> None:
        self.config = config
        self.cfg = cfg
        self.password = config.secret(cfg.password_env, key="bounces.mailbox.password_env")
        self.client: IMAPClient | None = None
        self.uidvalidity = 0
        self.name = f"imap:{cfg.username}@{cfg.host}/{cfg.folder}"

    def __enter__(self) -> ImapMailbox:
        cfg = self.cfg
        port = cfg.port or (993 if cfg.security == "tls" else 143)
        try:
            client = IMAPClient(
                cfg.host,
                port=port,
                ssl=cfg.security == "tls",
                ssl_context=_context(cfg, self.config) if cfg.security == "tls" else None,
                timeout=cfg.timeout,
            )
            if cfg.security == "starttls":
                client.starttls(_context(cfg, self.config))
            client.login(cfg.username, self.password)
            info: dict[bytes, Any] = client.select_folder(
                cfg.folder, readonly=not cfg.delete_processed
            )
        except (OSError, IMAPClientError, ssl.SSLError) as e:
            raise MailboxError(f"{self.name}: {e}") from None
        self.client = client
        self.uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            with contextlib.suppress(OSError, IMAPClientError):
                self.client.logout()
            self.client = None

    def messages(self, after_uid: int = 0) -> Iterator[RawMessage]:
        """Messages with a UID above ``after_uid``, oldest first. ``where`` is ``uid N``."""
        assert self.client is not None
        try:
            uids = sorted(
                u for u in self.client.search(["UID", f"{after_uid + 1}:*"]) if u > after_uid
            )
            for i in range(0, len(uids), BATCH):
                chunk = uids[i : i + BATCH]
                fetched = self.client.fetch(chunk, [b"RFC822.SIZE", b"BODY.PEEK[]"])
                for uid in chunk:
                    item = fetched.get(uid, {})
                    data = item.get(b"BODY[]")
                    if isinstance(data, bytes) and len(data) <= MAX_MESSAGE:
                        yield RawMessage(f"uid {uid}", data)
        except (OSError, IMAPClientError) as e:
            raise MailboxError(f"{self.name}: {e}") from None

    def delete(self, message: RawMessage) -> None:
        """Flag one of OUR messages deleted and expunge it (by UID)."""
        assert self.client is not None
        uid = int(message.where.split()[-1])
        try:
            self.client.delete_messages([uid])
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge([uid])
            else:  # pragma: no cover - every current server has UIDPLUS
                self.client.expunge()
        except (OSError, IMAPClientError) as e:
            raise MailboxError(f"{self.name}: cannot delete uid {uid}: {e}") from None
