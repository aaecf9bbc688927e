"""VERP return paths: ``bounces+{token}@domain``, the token naming the ledger row.

Every digest message leaves with the envelope sender (SMTP ``MAIL FROM``, the
``Return-Path`` the receiving MTA writes) ``bounces+d{edition}.{subscriber}.{mac}@domain``;
queued mail (confirmation, welcome) with ``bounces+q{queue id}.{mac}@domain``. A bounce
comes back to that address, so it names exactly one (edition, subscriber) without
parsing the bounce's prose. The MAC is an HMAC-SHA256 (64 bits, lower-case hex: some
MTAs fold the local part's case) under the token key: a forged or altered token is
ignored.

The pattern is ``[bounces] return_path`` (default ``bounces+{token}@`` the newsletter's
From domain); mail to the same local part without a token (``bounces@domain``: where
feedback loops send their reports) is ours too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from feedpub.config import Config, NewsletterConfig
from feedpub.digest.tokens import from_address, from_domain

_MAC_HEX = 16
_TOKEN = re.compile(
    r"^(?:d(?P<edition>[0-9]+)\.(?P<sub>[0-9]+)|q(?P<queue>[0-9]+))\.(?P<mac>[0-9a-f]+)$"
)


@dataclass(frozen=True, slots=True)
class VerpRef:
    """What a genuine token names: a ledger row, or a queued message."""

    edition_id: int | None = None
    subscriber_id: int | None = None
    queue_id: int | None = None


@dataclass(frozen=True, slots=True)
class BounceAddress:
    """One configured return path, split for matching: ``{prefix}{token}{suffix}``."""

    prefix: str  # "bounces+"
    suffix: str  # "@news.example"

    @property
    def plain(self) -> str:
        """The address without a token (``bounces@news.example``)."""
        return self.prefix.rstrip("+-=.") + self.suffix


class Verp:
    def __init__(self, key: bytes, config: Config) -> None:
        if not key:
            raise ValueError("empty token key")
        self._base = hmac.new(key, b"verp\x00", digestmod=hashlib.sha256)
        self.config = config
        self.enabled = config.bounces.verp
        self.addresses = tuple(dict.fromkeys(self._pattern(n) for n in config.newsletters))

    def _pattern(self, nl: NewsletterConfig) -> BounceAddress:
        pattern = self.config.bounces.return_path or f"bounces+{{token}}@{from_domain(nl.from_)}"
        local, _, domain = pattern.rpartition("@")
        prefix, _, rest = local.partition("{token}")
        return BounceAddress(prefix.lower(), (rest + "@" + domain).lower())

    def mac(self, text: str) -> str:
        h = self._base.copy()
        h.update(text.encode("ascii"))
        return h.hexdigest()[:_MAC_HEX]

    def token_for_delivery(self, edition_id: int, subscriber_id: int) -> str:
        body = f"d{edition_id}.{subscriber_id}"
        return f"{body}.{self.mac(body)}"

    def token_for_queue(self, queue_id: int) -> str:
        body = f"q{queue_id}"
        return f"{body}.{self.mac(body)}"

    def envelope_from(self, nl: NewsletterConfig, token: str) -> str:
        """The envelope sender for a message of ``nl``: the VERP address, or the From
        address when ``[bounces] verp`` is off."""
        if not self.enabled:
            return from_address(nl.from_)
        p = self._pattern(nl)
        return f"{p.prefix}{token}{p.suffix}"

    def verify(self, token: str) -> VerpRef | None:
        """What a token names, when its MAC is genuine."""
        m = _TOKEN.match(token.strip().lower())
        if m is None:
            return None
        body = token.strip().lower().rsplit(".", 1)[0]
        if not hmac.compare_digest(self.mac(body), m.group("mac")):
            return None
        if m.group("queue") is not None:
            return VerpRef(queue_id=int(m.group("queue")))
        return VerpRef(int(m.group("edition")), int(m.group("sub")))

    def match(self, address: str) -> tuple[bool, str | None]:
        """(ours, token): whether ``address`` is one of our bounce addresses, and the
        token it carries (None: the plain address, no token)."""
        addr = address.strip().strip("<>").lower()
        for p in self.addresses:
            if addr == p.plain:
                return True, None
            if addr.startswith(p.prefix) and addr.endswith(p.suffix):
                token = addr[len(p.prefix) : len(addr) - len(p.suffix)]
                if token:
                    return True, token
        return False, None
