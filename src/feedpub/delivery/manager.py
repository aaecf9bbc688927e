"""The sending manager: drains an edition's ledger through a Messenger, one row at a time.

Ledger statuses (table ``deliveries``): queued -> sending -> sent | failed (temporary:
attempts, next_attempt, last_error; retried later) | bounced (permanent).

Exactly-once as far as a crash allows: a row is claimed — ``UPDATE ... SET
status='sending' WHERE ... AND status=<what we read>`` with its own commit, rowcount
checked — BEFORE the message is handed to the messenger, and marked ``sent`` (committed)
right after. Two processes draining one edition never both claim a row. A row left in
``sending`` by a crash is reclaimed once it is older than ``stale_after``, so at most
the in-flight message is sent twice (listmonk skips a whole batch; we don't).

Edition status: frozen -> sending -> sent (every row sent or bounced) | paused (no
server reachable: ServerUnavailableError). Never "sent" while rows remain to send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.delivery.base import Messenger, OutgoingMessage
from feedpub.errors import PermanentDeliveryError, ServerUnavailableError, TemporaryDeliveryError
from feedpub.store import Store

DONE = ("sent", "bounced")
PENDING = ("queued", "sending", "failed")


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


@dataclass
class DeliveryReport:
    edition_id: int
    sent: int = 0
    failed: int = 0  # temporary failures this run (retried later)
    bounced: int = 0
    skipped: int = 0  # claimed by another process meanwhile
    paused: bool = False
    edition_status: str = ""
    remaining: int = 0  # rows still queued/sending/failed after this run
    errors: list[str] = field(default_factory=list)


Compose = Callable[[LedgerRow], OutgoingMessage]
Progress = Callable[[DeliveryReport], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryManager:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        *,
        clock: Callable[[], datetime] = _utcnow,
        max_attempts: int = 5,
        retry_base: timedelta = timedelta(minutes=1),
        stale_after: timedelta = timedelta(minutes=2),
        hard_bounce_limit: int = 1,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.stale_after = stale_after
        self.hard_bounce_limit = hard_bounce_limit

    # ---- ledger queries --------------------------------------------------------------
    def due_rows(self, edition_id: int) -> list[LedgerRow]:
        """Rows to (re)send now: queued; failed whose next attempt is due; sending whose
        claim is stale (a crashed sender)."""
        d = s.deliveries
        now = self.clock()
        q = (
            sa.select(d)
            .where(
                d.c.edition_id == edition_id,
                sa.or_(
                    d.c.status == "queued",
                    sa.and_(
                        d.c.status == "failed",
                        sa.or_(d.c.next_attempt.is_(None), d.c.next_attempt <= now),
                    ),
                    sa.and_(d.c.status == "sending", d.c.updated <= now - self.stale_after),
                ),
            )
            .order_by(d.c.subscriber_id)
        )
        with self.store.read() as conn:
            return [
                LedgerRow(
                    r.edition_id,
                    r.subscriber_id,
                    r.email,
                    tuple(b for b in r.selection.split(";") if b),
                    r.message_id,
                    r.status,
                    r.attempts,
                    r.updated,
                )
                for r in conn.execute(q)
            ]

    def _claim(self, row: LedgerRow) -> bool:
        d = s.deliveries
        cond = [
            d.c.edition_id == row.edition_id,
            d.c.subscriber_id == row.subscriber_id,
            d.c.status == row.status,
        ]
        if row.status == "sending":
            cond.append(d.c.updated == row.updated)  # nobody reclaimed it meanwhile
        with self.store.begin() as conn:
            res = conn.execute(
                sa.update(d).where(*cond).values(status="sending", updated=self.clock())
            )
            return res.rowcount == 1

    def _mark(self, row: LedgerRow, **values: object) -> None:
        d = s.deliveries
        with self.store.begin() as conn:
            conn.execute(
                sa.update(d)
                .where(d.c.edition_id == row.edition_id, d.c.subscriber_id == row.subscriber_id)
                .values(updated=self.clock(), **values)
            )

    def _bounce_subscriber(self, subscriber_id: int) -> None:
        sub = s.subscribers
        with self.store.begin() as conn:
            conn.execute(
                sa.update(sub)
                .where(sub.c.id == subscriber_id)
                .values(hard_bounces=sub.c.hard_bounces + 1, updated=self.clock())
            )
            conn.execute(
                sa.update(sub)
                .where(sub.c.id == subscriber_id, sub.c.hard_bounces >= self.hard_bounce_limit)
                .values(status="bounced")
            )

    def _set_edition(self, edition_id: int, status: str, *, finished: bool = False) -> None:
        e = s.editions
        values: dict[str, object] = {"status": status}
        if finished:
            values["finished"] = self.clock()
        with self.store.begin() as conn:
            conn.execute(sa.update(e).where(e.c.id == edition_id).values(**values))

    def counts(self, edition_id: int) -> dict[str, int]:
        d = s.deliveries
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(d.c.status, sa.func.count())
                .where(d.c.edition_id == edition_id)
                .group_by(d.c.status)
            ).all()
        return {str(st): int(n) for st, n in rows}

    # ---- the loop --------------------------------------------------------------------
    def deliver(
        self, edition_id: int, compose: Compose, *, progress: Progress | None = None
    ) -> DeliveryReport:
        report = DeliveryReport(edition_id)
        self._set_edition(edition_id, "sending")
        for row in self.due_rows(edition_id):
            if not self._claim(row):
                report.skipped += 1
                continue
            message = compose(row)
            try:
                self.messenger.send(message)
            except ServerUnavailableError as e:
                # Not the recipient's fault: put the row back untouched and pause.
                self._mark(row, status="queued" if row.status != "failed" else "failed")
                report.paused = True
                report.errors.append(str(e))
                break
            except TemporaryDeliveryError as e:
                attempts = row.attempts + 1
                if attempts >= self.max_attempts:
                    self._mark(
                        row,
                        status="bounced",
                        attempts=attempts,
                        next_attempt=None,
                        last_error=f"gave up after {attempts} attempts: {e}"[:2000],
                    )
                    report.bounced += 1
                else:
                    self._mark(
                        row,
                        status="failed",
                        attempts=attempts,
                        next_attempt=self.clock() + self.retry_base * 2 ** (attempts - 1),
                        last_error=str(e)[:2000],
                    )
                    report.failed += 1
            except PermanentDeliveryError as e:
                self._mark(
                    row, status="bounced", attempts=row.attempts + 1, last_error=str(e)[:2000]
                )
                self._bounce_subscriber(row.subscriber_id)
                report.bounced += 1
            else:
                self._mark(row, status="sent", attempts=row.attempts + 1, last_error=None)
                report.sent += 1
            if progress is not None:
                progress(report)
        counts = self.counts(edition_id)
        report.remaining = sum(counts.get(st, 0) for st in PENDING)
        if report.paused:
            report.edition_status = "paused"
        elif report.remaining == 0:
            report.edition_status = "sent"
        else:
            report.edition_status = "sending"
        self._set_edition(
            edition_id, report.edition_status, finished=report.edition_status == "sent"
        )
        return report
