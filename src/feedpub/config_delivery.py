"""The ``[delivery]`` table of ``config.toml`` (the SMTP relay, its fallbacks and limits,
DKIM, the ledger's claim lease: docs/smtp.md), kept apart from ``feedpub.config`` so that
module stays readable; ``Config`` includes it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


AtLeastASecond = Annotated[timedelta, Field(ge=timedelta(seconds=1))]


class SmtpServerConfig(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str = ""
    password_env: str = "FEEDPUB_SMTP_PASSWORD"
    timeout: Annotated[float, Field(gt=0)] = 30.0
    pool_size: Annotated[int, Field(ge=1, le=64)] = 4
    rate_per_second: Annotated[float, Field(gt=0)] | None = None
    rate_per_hour: Annotated[int, Field(gt=0)] | None = None
    validate_certs: bool = True
    ca_file: Path | None = None  # extra CA bundle (PEM) for a private or self-signed relay
    helo_name: str = ""  # EHLO name; default: this machine's fully qualified name


class SmtpConfig(SmtpServerConfig):
    fallbacks: tuple[SmtpServerConfig, ...] = ()  # tried in order when the main server is down
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    max_age: timedelta = timedelta(days=2)  # stop retrying a temporary failure after this
    retry_base: timedelta = timedelta(minutes=1)  # backoff: base * 2**(attempt-1)
    hard_bounce_limit: Annotated[int, Field(ge=1)] = 1  # subscriber marked bounced after N
    stall_limit: Annotated[int, Field(ge=1, le=1000)] = 3  # connection failures = relay down


_DKIM_REQUIRED = ("From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post")


class DkimConfig(_Model):
    selector: str
    domain: str
    key_file: Path
    headers: tuple[str, ...] = (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    )

    @field_validator("headers")
    @classmethod
    def _required_headers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # RFC 6376 §5.4 requires From; RFC 8058 §4 requires both List-Unsubscribe fields.
        have = {h.lower() for h in v}
        missing = [h for h in _DKIM_REQUIRED if h.lower() not in have]
        if missing:
            raise ValueError(f"must include {', '.join(missing)} (RFC 6376 §5.4, RFC 8058 §4)")
        return v


class DeliveryConfig(_Model):
    backend: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: Path = Path("outbox")
    smtp: SmtpConfig = SmtpConfig()
    dkim: DkimConfig | None = None
    unsubscribe_url: str | None = None  # default: {base_url}unsubscribe
    preferences_url: str | None = None  # default: {base_url}preferences
    unsubscribe_mailto: str | None = None  # default: unsubscribe@{from domain}
    # A sender's claim on a ledger row holds this long unrenewed (renewed while in flight).
    lease: AtLeastASecond = timedelta(minutes=2)
