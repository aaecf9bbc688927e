"""A ledger row as the delivery manager sees it, and the pure decision of what it becomes
after one SMTP transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from feedpub.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ServerUnavailableError,
)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    edition_id: int
    subscriber_id: int
    email: str
    selection: tuple[str, ...]
    message_id: str
    status: str
    attempts: int
    updated: datetime
    claimed_by: str | None = None
    claim_token: int = 0


# ---- the pure decision for one result --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # sent / failed / bounced / (queued|failed: put back on ServerUnavailable)
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    hard_bounce: bool = False
    paused: bool = False


def decide_outcome(
    row: LedgerRow,
    error: DeliveryError | None,
    *,
    now: datetime,
    edition_created: datetime,
    max_attempts: int,
    max_age: timedelta | None,
    retry_base: timedelta,
) -> Outcome:
    """What the ledger row becomes after one SMTP transaction. Pure."""
    attempts = row.attempts + 1
    if error is None:
        return Outcome("sent", attempts, None, None)
    text = str(error)[:2000]
    if isinstance(error, ServerUnavailableError):
        # Not the recipient's fault and not an attempt: put the row back as it was.
        back = "failed" if row.status == "failed" else "queued"
        return Outcome(back, row.attempts, None if back == "queued" else now, text, paused=True)
    if isinstance(error, PermanentDeliveryError):
        return Outcome("bounced", attempts, None, text, hard_bounce=True)
    # Temporary (4xx, dropped connection, timeout): back off base * 2**(attempts-1).
    too_old = max_age is not None and now - edition_created >= max_age
    if attempts >= max_attempts or too_old:
        why = f"{attempts} attempts" if attempts >= max_attempts else f"{max_age} since the edition"
        return Outcome("bounced", attempts, None, f"gave up after {why}: {text}"[:2000])
    delay = retry_base * 2 ** (attempts - 1)
    return Outcome("failed", attempts, now + delay, text)


def ledger_row(r: sa.Row[Any], *, status: str | None = None) -> LedgerRow:
    return LedgerRow(
        r.edition_id,
        r.subscriber_id,
        r.email,
        tuple(b for b in r.selection.split(";") if b),
        r.message_id,
        status if status is not None else r.status,
        r.attempts,
        r.updated,
        r.claimed_by,
        r.claim_token,
    )
