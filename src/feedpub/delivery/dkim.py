"""DKIM signing (RFC 6376) with dkimpy: the one module that knows dkimpy's quirks.

- The key file is read and parsed once, when the signer is built, so a missing or
  unreadable key is a configuration error before anything is sent (not 10,000 failures).
- Canonicalization relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4): survives the header
  refolding and trailing-whitespace changes relays make.
- The signed header list comes from ``[delivery.dkim] headers``; config validation makes
  sure it covers From, Subject, List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4:
  one-click unsubscribe needs both List-Unsubscribe fields under a valid signature).
- dkimpy takes and returns bytes; it expects CRLF line endings, which our messages have
  (``email.policy.SMTP``), and returns the ``DKIM-Signature`` field ending in CRLF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dkim
from dkim import crypto as dkim_crypto

from feedpub.errors import ConfigError, PermanentDeliveryError

if TYPE_CHECKING:
    from feedpub.config import Config, DkimConfig


class DkimSigner:
    def __init__(self, settings: DkimConfig, private_key_pem: bytes) -> None:
        self.selector = settings.selector.encode("ascii")
        self.domain = settings.domain.encode("ascii")
        self.headers = [h.encode("ascii") for h in settings.headers]
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
                include_headers=self.headers,
            )
        except dkim.DKIMException as e:
            # A message dkimpy cannot sign (e.g. malformed header block): this message only.
            raise PermanentDeliveryError(f"DKIM signing failed: {e}") from None
        return bytes(field) + data
