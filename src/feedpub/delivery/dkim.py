"""DKIM signing (RFC 6376) with dkimpy: the one module that knows dkimpy's quirks.

- The key file is read and parsed once, when the signer is built, so a missing or
  unreadable key is a configuration error before anything is sent (not 10,000 failures).
- Canonicalization relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4): survives the header
  refolding and trailing-whitespace changes relays make.
- The signed header list comes from ``[delivery.dkim] headers``; config validation makes
  sure it covers From, Subject, List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4:
  one-click unsubscribe needs both List-Unsubscribe fields under a valid signature).
  Reply-To, MIME-Version and Content-Type are signed too whenever the message has them
  (a relay or list that swapped the body's type or the reply address breaks the
  signature), and From is over-signed (listed once more than it occurs, RFC 6376 §8.15):
  a second From added in transit breaks the signature instead of being shown.
- Both backends sign: the outbox holds exactly the bytes SMTP would send, so operators
  can check DKIM on the outbox before switching to SMTP.
- dkimpy takes and returns bytes; it expects CRLF line endings, which our messages have
  (``email.policy.SMTP``), and returns the ``DKIM-Signature`` field ending in CRLF.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import dkim
from dkim import crypto as dkim_crypto

from feedpub.errors import ConfigError, PermanentDeliveryError

if TYPE_CHECKING:
    from feedpub.config import Config, DkimConfig


# Signed whenever present, whatever [delivery.dkim] headers lists.
SIGN_WHEN_PRESENT = ("Reply-To", "MIME-Version", "Content-Type")
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)


def _fields(data: bytes) -> Counter[str]:
    """How often each header field (lower-case name) occurs in the message's header block."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[: end + 2]
    return Counter(m.group(1).decode("ascii").lower() for m in _FIELD_NAME.finditer(head))


def header_list(configured: Sequence[str], data: bytes) -> list[str]:
    """The ``h=`` list for one message: the configured fields, the SIGN_WHEN_PRESENT
    ones the message has, and From once more than the message has it (over-signing)."""
    present = _fields(data)
    out = list(configured)
    have = {h.lower() for h in out}
    out += [h for h in SIGN_WHEN_PRESENT if h.lower() in present and h.lower() not in have]
    listed = sum(1 for h in out if h.lower() == "from")
    out += ["From"] * max(0, present["from"] + 1 - listed)
    return out


class DkimSigner:
    def __init__(self, settings: DkimConfig, private_key_pem: bytes) -> None:
        self.selector = settings.selector.encode("ascii")
        self.domain = settings.domain.encode("ascii")
        self.headers = tuple(settings.headers)
        try:
            dkim_crypto.parse_pem_private_key(private_key_pem)
        except dkim_crypto.UnparsableKeyError as e:
            raise ConfigError(
                f"not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}; "
                "generate one with `openssl genrsa -out dkim.pem 2048`",
                path=settings.key_file,
                key="delivery.dkim.key_file",
            ) from None
        self._key = private_key_pem

    @classmethod
    def from_config(cls, config: Config) -> DkimSigner | None:
        """The signer for ``[delivery.dkim]``, or None when DKIM is not configured."""
        settings = config.delivery.dkim
        if settings is None:
            return None
        path = config.resolve(settings.key_file)
        try:
            pem = path.read_bytes()
        except OSError as e:
            raise ConfigError(
                f"cannot read the DKIM key file {path}: {e.strerror}; fix "
                "[delivery.dkim] key_file or remove [delivery.dkim]",
                path=config.path,
                key="delivery.dkim.key_file",
            ) from None
        return cls(settings, pem)

    def sign(self, data: bytes) -> bytes:
        """The message with a ``DKIM-Signature`` field prepended."""
        try:
            field = dkim.sign(
                data,
                self.selector,
                self.domain,
                self._key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h.encode("ascii") for h in header_list(self.headers, data)],
            )
        except dkim.DKIMException as e:
            # A message dkimpy cannot sign (e.g. malformed header block): this message only.
            raise PermanentDeliveryError(f"DKIM signing failed: {e}") from None
        return bytes(field) + data
