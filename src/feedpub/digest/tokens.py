"""Unsubscribe and preferences tokens: HMAC-SHA256 over (purpose, subscriber, newsletter).

A token is ``{subscriber_id}.{newsletter}.{mac}``: the web endpoint that receives it can
check it with the key alone, without a database read, and nobody without the key can
make one for another subscriber. The key comes from the environment variable named in
``[secrets] token_key_env`` (``Config.token_key()`` raises ConfigError when it is unset —
there is no default key). RFC 8058 one-click unsubscribe needs the https URL to work
from a POST with no cookies: the token in the URL is all it needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import unquote, urlsplit

from feedpub.config import Config

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
_MAC_BYTES = 16  # 128 bits: forging one is out of reach


class Tokens:
    """Makes and checks tokens with one key (precomputed HMAC state: ~1 µs a token)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("empty token key")
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def mac(self, purpose: str, subscriber_id: int, newsletter: str) -> str:
        h = self._base.copy()
        h.update(f"{purpose}\x00{subscriber_id}\x00{newsletter}".encode())
        return base64.urlsafe_b64encode(h.digest()[:_MAC_BYTES]).rstrip(b"=").decode("ascii")

    def make(self, purpose: str, subscriber_id: int, newsletter: str) -> str:
        return f"{subscriber_id}.{newsletter}.{self.mac(purpose, subscriber_id, newsletter)}"

    def verify(self, purpose: str, token: str) -> tuple[int, str] | None:
        """(subscriber id, newsletter) when the token is genuine, else None. No DB read."""
        token = token.strip()
        if not token.isascii():  # str.isdigit() accepts "²"; compare_digest needs ASCII
            return None
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1]:
            return None
        sid, newsletter, mac = int(parts[0]), parts[1], parts[2]
        expected = self.mac(purpose, sid, newsletter)
        return (sid, newsletter) if hmac.compare_digest(expected, mac) else None


_MAC_CHARS = len(base64.urlsafe_b64encode(bytes(_MAC_BYTES)).rstrip(b"="))
_TOKEN_IN_TEXT = re.compile(
    rf"(?<![0-9])[0-9]+\.[a-z0-9]+(?:-[a-z0-9]+)*\.[A-Za-z0-9_-]{{{_MAC_CHARS}}}(?![A-Za-z0-9_-])"
)


def find_token(text: str) -> str:
    """The token inside what an operator pastes: a mailto subject ("unsubscribe TOKEN",
    "Re: ..."), the https or mailto URL (percent-encoded or not), or the bare token.
    Returns the text stripped when no token-shaped part is found (it then fails to verify)."""
    found = _TOKEN_IN_TEXT.search(unquote(text))
    return found.group(0) if found else text.strip()


def tokens_for(config: Config) -> Tokens:
    """Raises ConfigError when the key's environment variable is unset or empty."""
    return Tokens(config.token_key())


def verify_token(config: Config, token: str, purpose: str = UNSUBSCRIBE) -> tuple[int, str] | None:
    return tokens_for(config).verify(purpose, token)


def unsubscribe_base(config: Config) -> str:
    """The unsubscribe endpoint the digests link to (``feedpub serve`` serves its path)."""
    return config.delivery.unsubscribe_url or f"{config.site.base_url}unsubscribe"


def preferences_base(config: Config) -> str:
    return config.delivery.preferences_url or f"{config.site.base_url}preferences"


class LinkMaker:
    """Per-subscriber unsubscribe/preferences URLs and the List-Unsubscribe mailto."""

    def __init__(self, config: Config, newsletter: str, tokens: Tokens) -> None:
        d = config.delivery
        self.newsletter = newsletter
        self.tokens = tokens
        self.unsubscribe_base = unsubscribe_base(config)
        self.preferences_base = preferences_base(config)
        nl = config.newsletter(newsletter)
        self.mailto = d.unsubscribe_mailto or f"unsubscribe@{from_domain(nl.from_)}"

        self._unsub_prefix = self._prefix(self.unsubscribe_base)
        self._prefs_prefix = self._prefix(self.preferences_base)
        self._mailto_prefix = f"mailto:{self.mailto}?subject=unsubscribe%20"

    @staticmethod
    def _prefix(base: str) -> str:
        # Tokens are URL-safe as they are (digits, slug, '.', base64url): no quoting needed.
        return f"{base}{'&' if urlsplit(base).query else '?'}t="

    def unsubscribe_url(self, subscriber_id: int, token: str | None = None) -> str:
        return self._unsub_prefix + (
            token or self.tokens.make(UNSUBSCRIBE, subscriber_id, self.newsletter)
        )

    def preferences_url(self, subscriber_id: int) -> str:
        return self._prefs_prefix + self.tokens.make(PREFERENCES, subscriber_id, self.newsletter)

    def list_unsubscribe(self, subscriber_id: int, folded: bool = False) -> str:
        """RFC 2369 List-Unsubscribe value: the https URL first, then mailto (RFC 8058
        one-click needs the https one). ``folded`` puts the mailto on a continuation line."""
        token = self.tokens.make(UNSUBSCRIBE, subscriber_id, self.newsletter)
        sep = ",\r\n " if folded else ", "
        return f"<{self._unsub_prefix}{token}>{sep}<{self._mailto_prefix}{token}>"


def _ascii_domain(domain: str) -> str:
    """An internationalized domain in its ASCII form (IDNA, RFC 5890): what headers,
    Message-IDs and SMTP without SMTPUTF8 can carry."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # not a valid IDN: left as written


def from_domain(from_header: str) -> str:
    """The domain of a From value such as ``Name <news@example.com>`` (ASCII form)."""
    addr = from_address(from_header)
    return addr.rsplit("@", 1)[-1].lower() if "@" in addr else "localhost"


def from_address(from_header: str) -> str:
    """The bare address of a From value, its domain in ASCII form."""
    addr = from_header.rsplit("<", 1)[-1].rstrip(">").strip()
    local, at, domain = addr.rpartition("@")
    return f"{local}@{_ascii_domain(domain)}" if at else addr


def ascii_from(from_header: str) -> str:
    """A From / Reply-To value with its address's domain in ASCII form (the display name
    is left for the header encoder: RFC 2047 cannot encode a domain)."""
    if "<" not in from_header:
        return from_address(from_header)
    name = from_header.rsplit("<", 1)[0]
    return f"{name}<{from_address(from_header)}>"
