"""The ``[signup]`` and ``[bounces]`` tables of ``config.toml`` (the subscriber
lifecycle: docs/signup.md, docs/bounces.md), kept apart from ``feedpub.config`` so
that module stays readable; ``Config`` includes them."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute http(s) URL, e.g. 'https://example.com/'")
    return value


class SignupConfig(_Model):
    """Readers' self sign-up on ``feedpub serve`` (double opt-in); see docs/signup.md."""

    enabled: bool = True  # serve the sign-up pages and POST endpoint
    url: str | None = None  # default: {site.base_url}subscribe ({url}/{newsletter}: a page)
    confirm_url: str | None = None  # default: {site.base_url}confirm
    confirm_within: timedelta = timedelta(days=7)  # the link expires; pending rows then too
    store_ip: bool = True  # record the client address with the consent
    client_ip_header: str = ""  # e.g. "X-Forwarded-For" behind a proxy; "" = the socket's
    consent_text: str = (
        "I agree to receive this newsletter by email. I can unsubscribe at any time "
        "with the link in every message."
    )
    wording_version: str = ""  # default: a hash of consent_text (changes with the text)
    max_per_ip_per_hour: Annotated[int, Field(ge=1)] = 20  # sign-up POSTs per client
    max_mails_per_address_per_day: Annotated[int, Field(ge=1)] = 3  # no list bombing
    welcome: bool = False  # send a welcome message once confirmed
    queue_every: timedelta = timedelta(seconds=30)  # the daemon drains the mail queue

    @field_validator("url", "confirm_url")
    @classmethod
    def _urls(cls, v: str | None) -> str | None:
        return None if v is None else _check_absolute_url(v)

    @field_validator("confirm_within", "queue_every")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError("must be at least 1 second")
        return v

    @field_validator("client_ip_header")
    @classmethod
    def _header_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9-]+", v):
            raise ValueError(f"{v!r} is not an HTTP header name such as 'X-Forwarded-For'")
        return v


class MailboxConfig(_Model):
    """Where bounce, complaint and mailto-unsubscribe mail arrives (``bounces ingest``)."""

    type: Literal["maildir", "imap"]
    path: Path | None = None  # maildir: the folder holding cur/ new/ tmp/
    host: str = "127.0.0.1"  # imap
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default 993 (tls) / 143
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = ""
    password_env: str = "FEEDPUB_IMAP_PASSWORD"
    folder: str = "INBOX"
    timeout: Annotated[float, Field(gt=0)] = 30.0
    validate_certs: bool = True
    ca_file: Path | None = None
    delete_processed: bool = False  # delete OUR messages once stored (never anyone else's)

    @model_validator(mode="after")
    def _complete(self) -> MailboxConfig:
        if self.type == "maildir" and self.path is None:
            raise ValueError("a maildir mailbox needs 'path'")
        if self.type == "imap" and not self.username:
            raise ValueError("an imap mailbox needs 'username' (and 'password_env')")
        return self


class BouncesConfig(_Model):
    """VERP return paths and what bounces and complaints do; see docs/bounces.md."""

    verp: bool = True  # envelope sender bounces+{token}@domain naming the ledger row
    return_path: str | None = None  # default: bounces+{token}@{the newsletter's From domain}
    hard_after: Annotated[int, Field(ge=1)] = 1  # hard bounces before "bounced"
    soft_after: Annotated[int, Field(ge=1)] = 5  # soft bounces within soft_window ...
    soft_window: timedelta = timedelta(days=30)
    suppress_hard_bounces: bool = True  # a bounced address goes on the suppression list
    mailbox: MailboxConfig | None = None
    poll_every: timedelta | None = None  # the daemon reads the mailbox this often
    rate_window: timedelta = timedelta(days=30)  # status: per-newsletter rates over this
    complaint_warn: Annotated[float, Field(ge=0, le=1)] = 0.003  # Gmail/Yahoo: 0.3%
    bounce_warn: Annotated[float, Field(ge=0, le=1)] = 0.02

    @field_validator("return_path")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is None:
            return None
        local, at, domain = v.rpartition("@")
        if not at or "{token}" not in local or not domain or "{" in domain:
            raise ValueError(
                f"{v!r} must be an address whose local part holds {{token}}, "
                "e.g. 'bounces+{token}@news.example'"
            )
        if any(c in v for c in ' <>\\"\r\n'):
            raise ValueError(f"{v!r} must be a bare address (no spaces, quotes or brackets)")
        return v

    @field_validator("poll_every")
    @classmethod
    def _poll(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v < timedelta(seconds=10):
            raise ValueError("must be at least 10 seconds")
        return v

    @model_validator(mode="after")
    def _poll_needs_mailbox(self) -> BouncesConfig:
        if self.poll_every is not None and self.mailbox is None:
            raise ValueError("poll_every needs [bounces.mailbox] (where the mail arrives)")
        return self
