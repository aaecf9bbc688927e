"""The sending manager: drains an edition's ledger through a Messenger.

Ledger statuses (table ``deliveries``): queued -> sending -> sent | failed (temporary:
attempts, next_attempt, last_error; retried later with exponential backoff) | bounced
(permanent: a 5xx, or a temporary failure given up after ``max_attempts`` / ``max_age``).

Exactly-once as far as a crash allows. The ledger is written before and after every SMTP
transaction, each write its own commit:

1. *claim* (``delivery.claims``): a compare-and-swap ``UPDATE`` puts the row in
   ``sending`` under this sender, with a lease and a new fencing token, BEFORE the message
   is handed to the messenger, so two processes draining one edition never both send a row;
   a heartbeat renews the lease while the message is in flight, however slow the relay;
2. *record*: ``sent`` / ``failed`` / ``bounced`` right after the server's reply, written
   only if this sender still holds the claim's token.

A crash leaves at most the messages in flight in ``sending``: one for a plain messenger,
``pool_size`` for the pooled SMTP messenger (``send_many``). A restart resends exactly those
(they may have reached the relay: that is the only possible duplicate) and everything not
yet claimed; it never skips a row. A ``sending`` row is taken over only when its claimer is
known dead (same host, process gone) or its lease ran out (nobody renewed it for ``lease``:
a claimer that died on another host, or stalled).

A relay that stalls (timeouts, dropped connections, again and again) is treated as down:
a message whose connection was lost twice (``ConnectionFailedError``) is held, still
claimed, until the relay shows it is alive (any reply to another message: the message is
then recorded as a temporary failure) or is declared down (``ServerUnavailableError``: the
held rows go back untouched, no attempt counted, and the edition pauses).

Edition status: frozen -> sending -> sent (every row sent or bounced) | paused (no server
usable: ``ServerUnavailableError``; the rows go back untouched and the next run resumes).
Never "sent" while rows remain to send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.clock import Clock
from feedpub.delivery import claims
from feedpub.delivery.base import Messenger, OutgoingMessage
from feedpub.delivery.batches import BatchClaims, autocommit
from feedpub.delivery.outcome import LedgerRow as LedgerRow
from feedpub.delivery.outcome import Outcome as Outcome
from feedpub.delivery.outcome import decide_outcome as decide_outcome
from feedpub.delivery.outcome import ledger_row
from feedpub.delivery.reconnect import retrying
from feedpub.errors import (
    ConnectionFailedError,
    DeliveryError,
    ServerUnavailableError,
    TemporaryDeliveryError,
)
from feedpub.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

DONE = ("sent", "bounced")
PENDING = ("queued", "sending", "failed")


@dataclass
class DeliveryReport:
    edition_id: int
    sent: int = 0
    failed: int = 0  # temporary failures this run (retried later)
    bounced: int = 0  # permanent failures and give-ups this run
    skipped: int = 0  # claimed by another process meanwhile
    elsewhere: int = 0  # rows in flight under another live sender's claim at the end
    lost: int = 0  # results not recorded: this sender's claim was taken over (it stalled)
    paused: bool = False
    edition_status: str = ""
    due: int = 0  # rows due when this run started
    remaining: int = 0  # rows still queued/sending/failed (live during the run)
    errors: list[str] = field(default_factory=list)


Compose = Callable[[LedgerRow], OutgoingMessage]
Progress = Callable[[DeliveryReport], None]
ResultCallback = Callable[[OutgoingMessage, DeliveryError | None], None]


class BatchMessenger(Protocol):
    """A messenger that sends several messages at once (the pooled SMTP messenger)."""

    def send_many(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None: ...


class DeliveryManager:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        *,
        clock: Clock,
        max_attempts: int = 5,
        max_age: timedelta | None = None,
        retry_base: timedelta = timedelta(minutes=1),
        lease: timedelta = claims.LEASE,
        hard_bounce_limit: int = 1,
        claim_batch: int | None = None,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.retry_base = retry_base
        self.lease = lease
        self.hard_bounce_limit = hard_bounce_limit
        self.owner = claims.owner_token()
        self._dead: set[str] = set()
        # PostgreSQL: rows claimed in batches with FOR UPDATE SKIP LOCKED (several senders
        # share an edition); SQLite (one writer at a time): one compare-and-swap per row.
        self.batched = store.engine.dialect.name == "postgresql"
        pool = int(getattr(messenger, "pool_size", 1))
        self.claim_batch = claim_batch or min(max(4 * pool, 20), 200)

    def _op(self, what: str, op: Callable[[bool], T]) -> T:
        """A store operation, retried on a fresh connection while a server store is
        briefly unreachable (``delivery.reconnect``)."""
        return retrying(self.store, op, what=what)

    # ---- ledger queries --------------------------------------------------------------
    def due_rows(self, edition_id: int) -> list[LedgerRow]:
        """Rows to (re)send now: queued; failed whose next attempt is due; sending whose
        claimer is dead or whose lease ran out (a crashed or stalled sender)."""
        d = s.deliveries
        now = self.clock()
        with self.store.read() as conn:
            dead = claims.dead_claimers(conn, edition_id, self.owner)
            self._dead = set(dead)
            q = (
                sa.select(d)
                .where(d.c.edition_id == edition_id, claims.due(now, self.lease, dead))
                .order_by(d.c.subscriber_id)
            )
            return [ledger_row(r) for r in conn.execute(q)]

    def count_due(self, edition_id: int) -> int:
        d = s.deliveries
        now = self.clock()

        def op(_: bool) -> int:
            with self.store.read() as conn:
                dead = claims.dead_claimers(conn, edition_id, self.owner)
                return int(
                    conn.execute(
                        sa.select(sa.func.count()).where(
                            d.c.edition_id == edition_id, claims.due(now, self.lease, dead)
                        )
                    ).scalar_one()
                )

        return self._op("count due rows", op)

    def _put_back(self, pairs: Iterable[tuple[LedgerRow, int]]) -> None:
        """Give back claimed rows whose message was never handed to a relay (a stop
        request, a pause, the end of a pass): as they were, no attempt counted."""
        pairs = list(pairs)
        if not pairs:
            return

        def op(_: bool) -> None:
            with self.store.begin() as conn:
                for row, token in pairs:
                    back = "failed" if row.status == "failed" or row.attempts else "queued"
                    claims.record(
                        conn, edition_id=row.edition_id, subscriber_id=row.subscriber_id,
                        owner=self.owner, token=token, values={"status": back},
                    )  # fmt: skip

        self._op("put rows back", op)

    def _orphans(self, edition_id: int) -> list[tuple[LedgerRow, int]]:
        """Rows still held under this sender's name after a pass (nothing is in flight
        then): a batch claim whose commit went through while its reply was lost."""

        def op(_: bool) -> list[tuple[LedgerRow, int]]:
            with self.store.read() as conn:
                rows = claims.held_by(conn, edition_id, self.owner)
            return [(ledger_row(r), int(r.claim_token)) for r in rows]

        return self._op("find orphaned claims", op)

    def _claim(self, row: LedgerRow) -> int | None:
        with self.store.begin() as conn:
            return claims.claim(
                conn,
                edition_id=row.edition_id,
                subscriber_id=row.subscriber_id,
                seen_status=row.status,
                seen_token=row.claim_token,
                seen_owner=row.claimed_by,
                owner=self.owner,
                now=self.clock(),
                lease=self.lease,
                owner_dead=row.claimed_by in self._dead,
            )

    def _record(self, items: list[tuple[LedgerRow, int, Outcome]]) -> list[bool]:
        """Write each outcome if this sender still holds the claim, all in one commit;
        per item False when its claim was taken over meanwhile (nothing written). The
        results that came back together from the relay's connections are written
        together: at most ``pool_size``, so the messages sent but not yet recorded are
        never more than the messages in flight."""
        now = self.clock()
        plain = {i for i, (_, _, o) in enumerate(items) if o.status == "sent"}

        def op(retried: bool) -> list[bool]:
            if self.batched and not retried and len(plain) == len(items):
                # All sent (the usual case): one statement, its own commit; a row it did
                # not write was taken over (the statement is the whole fence).
                with autocommit(self.store) as conn:
                    done = claims.record_sent(
                        conn, self.owner, [(r.edition_id, r.subscriber_id, tok)
                                           for r, tok, _ in items], now,
                    )  # fmt: skip
                return [(r.subscriber_id, tok) in done for r, tok, _ in items]
            out = []
            with self.store.begin() as conn:
                # The sent-marks (nearly all) in one statement, the rest one by one.
                done = claims.record_sent(
                    conn, self.owner, [(items[i][0].edition_id, items[i][0].subscriber_id,
                                        items[i][1]) for i in sorted(plain)], now,
                )  # fmt: skip
                for i, (row, token, outcome) in enumerate(items):
                    ok = i in plain and (row.subscriber_id, token) in done
                    if not ok and (retried or i not in plain):
                        ok = self._record_one(conn, row, token, outcome, now, retried)
                    out.append(ok)
            return out

        return self._op("record results", op)

    def _record_one(
        self,
        conn: sa.Connection,
        row: LedgerRow,
        token: int,
        outcome: Outcome,
        now: datetime,
        retried: bool,
    ) -> bool:
        sub, d = s.subscribers, s.deliveries
        ok = claims.record(
            conn, edition_id=row.edition_id, subscriber_id=row.subscriber_id, owner=self.owner,
            token=token, values={"status": outcome.status, "attempts": outcome.attempts,
            "next_attempt": outcome.next_attempt, "last_error": outcome.last_error, "updated": now},
        )  # fmt: skip
        if not ok and retried:
            # The first try's commit may have gone through with its reply lost: then the
            # row holds exactly our word (and the bounce was counted).
            mine = conn.execute(
                sa.select(d.c.edition_id).where(
                    d.c.edition_id == row.edition_id,
                    d.c.subscriber_id == row.subscriber_id,
                    d.c.claim_token == token,
                    d.c.claimed_by.is_(None),
                    d.c.status == outcome.status,
                    d.c.attempts == outcome.attempts,
                )
            ).first()
            return mine is not None
        if ok and outcome.hard_bounce:
            conn.execute(
                sa.update(sub)
                .where(sub.c.id == row.subscriber_id)
                .values(hard_bounces=sub.c.hard_bounces + 1, updated=now)
            )
            conn.execute(
                sa.update(sub)
                .where(sub.c.id == row.subscriber_id, sub.c.hard_bounces >= self.hard_bounce_limit)
                .values(status="bounced")
            )
        return ok

    def _set_edition(self, edition_id: int, status: str, *, finished: bool = False) -> None:
        """Set the edition's status unless it is already finished (another sender may have
        finished it meanwhile: a late "sending" or "paused" must not undo that)."""
        e = s.editions
        values: dict[str, object] = {"status": status}
        if finished:
            values["finished"] = self.clock()

        def op(_: bool) -> None:
            with self.store.begin() as conn:
                conn.execute(
                    sa.update(e)
                    .where(e.c.id == edition_id, e.c.status.not_in(("sent", "skipped")))
                    .values(**values)
                )

        self._op("set the edition's status", op)

    def _edition_created(self, edition_id: int) -> datetime:
        e = s.editions
        with self.store.read() as conn:
            created = conn.execute(
                sa.select(e.c.created).where(e.c.id == edition_id)
            ).scalar_one_or_none()
        return created if created is not None else self.clock()

    def counts(self, edition_id: int) -> dict[str, int]:
        d = s.deliveries

        def op(_: bool) -> dict[str, int]:
            with self.store.read() as conn:
                rows = conn.execute(
                    sa.select(d.c.status, sa.func.count())
                    .where(d.c.edition_id == edition_id)
                    .group_by(d.c.status)
                ).all()
            return {str(st): int(n) for st, n in rows}

        return self._op("count the ledger", op)

    # ---- the loop --------------------------------------------------------------------
    def deliver(
        self,
        edition_id: int,
        compose: Compose,
        *,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> DeliveryReport:
        """Send every due row of the edition; repeat while retries come due within the run
        (a short ``retry_base``), bounded by ``max_attempts``.

        ``progress(report)`` runs after each result is recorded; ``should_stop()`` is asked
        before each new message is claimed (a daemon shutting down): what was handed to the
        server is recorded, the rest stays queued. The claims' heartbeat runs meanwhile."""
        report = DeliveryReport(edition_id)
        self._set_edition(edition_id, "sending")
        created = self._edition_created(edition_id)
        counts = self.counts(edition_id)
        report.remaining = sum(counts.get(st, 0) for st in PENDING)
        first = True
        stopped = False
        with claims.Heartbeat(self.store, self.owner, self.lease, self.clock):
            while not report.paused and not stopped:
                if self.batched:
                    if first:
                        report.due = self.count_due(edition_id)
                    source: Iterator[tuple[LedgerRow, int]] = BatchClaims(
                        self.store, edition_id, owner=self.owner, lease=self.lease,
                        clock=self.clock, limit=self.claim_batch, op=self._op,
                    )  # fmt: skip
                else:
                    rows = self.due_rows(edition_id)
                    if first:
                        report.due = len(rows)
                    if not rows:
                        break
                    source = self._claim_each(rows, report)
                first = False
                claimed, stopped = self._pass(
                    source, compose, report, created, progress, should_stop
                )
                if self.batched and not report.paused and not stopped:
                    orphans = self._orphans(edition_id)
                    self._put_back(orphans)
                    claimed += len(orphans)  # give them another pass
                if claimed == 0:
                    break  # everything due was taken by another process
        counts = self.counts(edition_id)
        report.remaining = sum(counts.get(st, 0) for st in PENDING)
        report.elsewhere = counts.get("sending", 0)  # ours are all recorded by now
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

    def _claim_each(
        self, rows: list[LedgerRow], report: DeliveryReport
    ) -> Iterator[tuple[LedgerRow, int]]:
        """SQLite: claim the due rows one by one as they are pulled (compare-and-swap)."""
        for row in rows:
            token = self._claim(row)
            if token is None:
                report.skipped += 1
                continue
            yield row, token

    def _pass(
        self,
        source: Iterator[tuple[LedgerRow, int]],
        compose: Compose,
        report: DeliveryReport,
        created: datetime,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None,
    ) -> tuple[int, bool]:
        """One pass over the due rows. Returns (rows claimed, stopped on request)."""
        claimed = 0
        stopped = False
        in_flight: dict[tuple[int, int], tuple[LedgerRow, int]] = {}
        # Rows whose connection was lost twice, still claimed, until the relay shows it is
        # alive (then: a temporary failure) or is declared down (then: put back untouched).
        held: list[tuple[LedgerRow, int, DeliveryError]] = []
        # Results decided, to be written in one commit before the next message is pulled.
        unwritten: list[tuple[LedgerRow, int, Outcome]] = []

        def apply(row: LedgerRow, token: int, error: DeliveryError | None) -> None:
            unwritten.append((row, token, self._decide(row, error, report, created)))

        def flush() -> None:
            if unwritten:
                self._write(unwritten, report)
                unwritten.clear()
                if progress is not None:
                    progress(report)

        def settle(down: bool) -> None:
            for row, token, err in held:
                why = (
                    ServerUnavailableError(f"{err}; the relay is treated as down") if down else err
                )
                apply(row, token, why)
            held.clear()

        def claimed_messages() -> Iterator[OutgoingMessage]:
            nonlocal claimed, stopped
            while True:
                flush()
                if should_stop is not None and should_stop():
                    stopped = True
                    return
                pair = next(source, None)
                if pair is None:
                    return
                row, token = pair
                claimed += 1
                try:
                    message = compose(row)
                except Exception as e:  # a composition bug must not lose the row
                    apply(row, token, TemporaryDeliveryError(f"compose: {e!r}"))
                    continue
                in_flight[(row.edition_id, row.subscriber_id)] = (row, token)
                yield message

        def on_result(message: OutgoingMessage, error: DeliveryError | None) -> None:
            row, token = in_flight.pop((message.edition_id, message.subscriber_id))
            if isinstance(error, ConnectionFailedError):
                if not report.paused:
                    held.append((row, token, error))  # wait for a verdict on the relay
                    return
                error = ServerUnavailableError(f"{error}; the relay is treated as down")
            else:  # the relay answered (or is down): the held rows' verdict
                settle(down=isinstance(error, ServerUnavailableError))
            apply(row, token, error)

        try:
            self._send_all(claimed_messages(), on_result)
        except ServerUnavailableError:
            report.paused = True  # each in-flight row was already put back
        finally:
            settle(down=report.paused)
            flush()
            if isinstance(source, BatchClaims):  # claimed, never handed over: give back
                self._put_back(source.take_pending())
        return claimed, stopped

    def _send_all(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None:
        batch = getattr(self.messenger, "send_many", None)
        if batch is not None:
            batch(messages, on_result)
            return
        for message in messages:
            try:
                self.messenger.send(message)
            except DeliveryError as e:
                on_result(message, e)
                if isinstance(e, ServerUnavailableError):
                    raise
            else:
                on_result(message, None)

    def _decide(
        self, row: LedgerRow, error: DeliveryError | None, report: DeliveryReport,
        created: datetime,
    ) -> Outcome:  # fmt: skip
        outcome = decide_outcome(
            row,
            error,
            now=self.clock(),
            edition_created=created,
            max_attempts=self.max_attempts,
            max_age=self.max_age,
            retry_base=self.retry_base,
        )
        if outcome.paused:
            report.paused = True  # no more messages are pulled
        return outcome

    def _write(self, items: list[tuple[LedgerRow, int, Outcome]], report: DeliveryReport) -> None:
        for (row, _, outcome), ok in zip(items, self._record(items), strict=True):
            if not ok:
                # Our claim was taken over: we stalled past the lease and another sender
                # owns the row now. Its word stands; ours (maybe a duplicate) is logged.
                report.lost += 1
                log.warning(
                    "claim taken over while this sender stalled; result not recorded",
                    extra={
                        "edition": row.edition_id,
                        "subscriber": row.subscriber_id,
                        "result": outcome.status,
                    },
                )
            elif outcome.paused:
                why = f"{outcome.last_error}; edition paused, the next run resumes it"
                if not report.errors or report.errors[-1] != why:
                    report.errors.append(why)
            elif outcome.status == "sent":
                report.sent += 1
                report.remaining -= 1
            elif outcome.status == "bounced":
                report.bounced += 1
                report.remaining -= 1
            else:
                report.failed += 1
