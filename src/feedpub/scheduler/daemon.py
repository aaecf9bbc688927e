"""The scheduler daemon behind ``feedpub run``.

Start: take the store's daemon lock (one instance), reconcile config.toml with the jobs
stored in the database, decide the catch-up for each newsletter from the store
(``jobs.decide_catch_up``), then run: a collect+build tick every ``[schedule]
collect_every``, each newsletter at its cron slots in its own time zone.

Stop (SIGTERM/SIGINT via :meth:`Daemon.stop`): take no new work, let the running job
finish its current transaction (a send stops before its next message: ``should_stop``
of ``send_newsletter``), exit within ``[schedule] shutdown_timeout``.

Every job body is a plain method taking ``now`` so tests drive it with any clock; the
APScheduler job only calls :func:`run_job`, which finds the running daemon.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.clock import Clock, system_clock
from feedpub.collect import CollectReport, collect
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.smtp import server_passwords
from feedpub.digest import SendReport, send_newsletter
from feedpub.digest.unfinished import unfinished_editions
from feedpub.errors import FeedpubError
from feedpub.feeds import build_feeds
from feedpub.locks import Lock, lock_for
from feedpub.scheduler import engine
from feedpub.scheduler.jobs import (
    CatchUp,
    EditionState,
    ReconcilePlan,
    decide_catch_up,
    desired_jobs,
    newsletter_grace,
    parse_slot_key,
    reconcile,
    slot_to_send,
)
from feedpub.scheduler.lifecycle_job import run_lifecycle
from feedpub.slots import slot_key
from feedpub.store import Store

log = logging.getLogger("feedpub.scheduler")

SINCE_KEY = "scheduler.since."  # meta: when the daemon first scheduled a newsletter
STARTUP_JOB = "startup"

PRUNE_EVERY = timedelta(hours=1)
# One row each per tick, so these are pruned; other kinds (catch-up, digest) are rare.
PRUNED_KINDS = ("collect", "build")

_current: Daemon | None = None  # the daemon of this process, for run_job


def run_job(kind: str, newsletter: str | None = None) -> None:
    """The callable APScheduler stores (by reference) in ``scheduler_jobs``."""
    d = _current
    if d is None:  # pragma: no cover - a job fired with no daemon in this process
        log.error("job fired without a running daemon", extra={"job": kind})
        return
    if kind == "collect":
        d.tick()
    elif kind == "lifecycle":
        d.lifecycle()
    elif kind == "newsletter" and newsletter is not None:
        d.newsletter_job(newsletter)
    elif kind == STARTUP_JOB:
        d.startup()
    else:
        log.error("unknown job", extra={"job": kind, "newsletter": newsletter})


# ---- store state of the scheduler ---------------------------------------------------


def scheduled_since(conn: Connection) -> dict[str, datetime]:
    rows = conn.execute(
        sa.select(s.meta.c.key, s.meta.c.value).where(s.meta.c.key.startswith(SINCE_KEY))
    )
    return {r.key[len(SINCE_KEY) :]: datetime.fromisoformat(r.value) for r in rows}


def _set_since(conn: Connection, slug: str, when: datetime) -> None:
    key = SINCE_KEY + slug
    conn.execute(sa.delete(s.meta).where(s.meta.c.key == key))
    conn.execute(sa.insert(s.meta).values(key=key, value=when.astimezone(UTC).isoformat()))


def _drop_since(conn: Connection, slug: str) -> None:
    conn.execute(sa.delete(s.meta).where(s.meta.c.key == SINCE_KEY + slug))


def prune_runs(conn: Connection, before: datetime) -> int:
    """Delete collect/build run rows started before ``before``, keeping the newest of
    each kind (what ``feedpub status`` shows). A tick writes two rows every
    ``collect_every``: 210,000 a year at the default."""
    r = s.runs
    deleted = 0
    for kind in PRUNED_KINDS:
        newest = conn.execute(sa.select(sa.func.max(r.c.id)).where(r.c.kind == kind)).scalar()
        if newest is None:
            continue
        res = conn.execute(
            sa.delete(r).where(r.c.kind == kind, r.c.started < before, r.c.id < newest)
        )
        deleted += res.rowcount or 0
    return deleted


def edition_states(conn: Connection, newsletter: str) -> list[EditionState]:
    """Editions of a newsletter keyed by a schedule slot (manual keys are ignored)."""
    out = []
    q = sa.select(s.editions.c.slot, s.editions.c.status).where(
        s.editions.c.newsletter == newsletter
    )
    for r in conn.execute(q):
        slot = parse_slot_key(r.slot)
        if slot is not None:
            out.append(EditionState(slot, r.status))
    return out


# ---- the daemon ---------------------------------------------------------------------


class Daemon:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = system_clock,
        lock: Lock | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.lock = lock or lock_for(config.store_url, "daemon", store.engine, clock=clock)
        self.stopping = threading.Event()
        self._work = threading.Lock()  # one job body at a time, however it is called
        self._scheduler: Any = None
        self._jobs_engine: sa.Engine | None = None
        self._catch_ups: list[CatchUp] = []
        self.plan: ReconcilePlan | None = None
        self._pruned_at: datetime | None = None
        self._polled_at: datetime | None = None  # the bounce mailbox ([bounces] poll_every)

    # ---- lifecycle ------------------------------------------------------------------
    def start(self, *, paused: bool = False) -> None:
        """Take the lock (LockedError if another daemon runs), reconcile, start jobs.

        ``paused``: reconcile and decide the catch-up but run nothing (tests then call
        :meth:`startup`, :meth:`tick`, :meth:`newsletter_job` with their own ``now``)."""
        global _current
        self.check_secrets()
        self.lock.acquire()
        try:
            now = self.clock()
            self._jobs_engine = engine.jobstore_engine(self.config.store_url, self.store.engine)
            sched = engine.make_scheduler(self._jobs_engine)
            sched.start(paused=True)
            self._scheduler = sched
            self._catch_ups = self.prepare(now)
            _current = self
            if not paused:
                engine.run_once(sched, STARTUP_JOB, run_job, now)
                sched.resume()
        except BaseException:
            self._close_scheduler()
            self.lock.release()
            raise
        log.info(
            "daemon started",
            extra={
                "newsletters": len(self.config.newsletters),
                "collect_every": f"{self.config.schedule.collect_every.total_seconds():g}s",
                "store": redact_url(self.config.store_url),
            },
        )

    def check_secrets(self) -> None:
        """ConfigError (exit 2) when a secret the jobs need is unset: better than starting
        and failing every newsletter slot for as long as nobody reads the log."""
        if self.config.newsletters:
            self.config.token_key()
            if self.config.delivery.backend == "smtp":
                server_passwords(self.config)

    def prepare(self, now: datetime) -> list[CatchUp]:
        """Decide catch-ups from the store, then make the stored jobs match config.toml."""
        sched = self._scheduler
        with self.store.read() as conn:
            since = scheduled_since(conn)
            catch_ups = [
                self.decide(conn, n, now, since.get(n.slug)) for n in self.config.newsletters
            ]
        desired = desired_jobs(self.config)
        plan = reconcile(desired, engine.stored_jobs(sched))
        self.plan = plan
        for job_id in plan.remove:
            engine.remove_job(sched, job_id)
            log.info("job removed", extra={"job": job_id, "reason": "not in config"})
        for spec in plan.add:
            nrt = engine.put_job(sched, spec, run_job, now)
            log.info("job added", extra={"job": spec.id, "next_run": _iso(nrt)})
        for spec in plan.replace:
            nrt = engine.put_job(sched, spec, run_job, now)
            log.info(
                "job rescheduled",
                extra={"job": spec.id, "schedule": spec.fingerprint, "next_run": _iso(nrt)},
            )
        for spec in plan.keep:
            engine.skip_past_runs(sched, spec, now)
        with self.store.begin() as conn:
            for job_id in plan.remove:
                if job_id.startswith("newsletter:"):
                    _drop_since(conn, job_id.split(":", 1)[1])
            for n in self.config.newsletters:
                if n.slug not in since:
                    _set_since(conn, n.slug, now)
        return catch_ups

    def decide(
        self, conn: Connection, n: NewsletterConfig, now: datetime, since: datetime | None
    ) -> CatchUp:
        return decide_catch_up(
            newsletter=n.slug,
            schedule=n.schedule,
            tz=n.timezone,
            grace=newsletter_grace(self.config, n),
            now=now,
            editions=edition_states(conn, n.slug),
            scheduled_since=since,
            resume_window=max(newsletter_grace(self.config, n), self.config.delivery.smtp.max_age),
        )

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking work, wait for the running job, release the lock. True when clean."""
        global _current
        self.stopping.set()
        if timeout is None:
            timeout = self.config.schedule.shutdown_timeout.total_seconds()
        log.info("stopping", extra={"timeout": f"{timeout:g}s"})
        done = threading.Event()

        def _shutdown() -> None:
            self._close_scheduler()
            done.set()

        t = threading.Thread(target=_shutdown, name="feedpub-shutdown", daemon=True)
        t.start()
        clean = done.wait(timeout)
        if clean:
            self.lock.release()
            _current = None
            log.info("stopped")
        else:
            log.error(
                "shutdown timed out with a job still running; its transaction is rolled "
                "back and the delivery ledger resumes it at the next start",
                extra={"timeout": f"{timeout:g}s"},
            )
        return clean

    def _close_scheduler(self) -> None:
        if self._scheduler is not None:
            engine.shutdown(self._scheduler)
            self._scheduler = None
        if self._jobs_engine is not None and self._jobs_engine is not self.store.engine:
            self._jobs_engine.dispose()
        self._jobs_engine = None

    def next_runs(self) -> dict[str, datetime | None]:
        """Job id -> next run time, from the running scheduler."""
        if self._scheduler is None:
            return {}
        return {j.id: j.next_run_time for j in self._scheduler.get_jobs(jobstore=engine.PERSISTENT)}

    # ---- job bodies -----------------------------------------------------------------
    def startup(self, now: datetime | None = None) -> None:
        """First work after start: a collect+build tick, then the decided catch-ups."""
        self.tick(now)
        for c in self._catch_ups:
            if self.stopping.is_set():
                return
            self.run_catch_up(c, now)
        self._catch_ups = []

    def run_catch_up(self, c: CatchUp, now: datetime | None = None) -> None:
        if c.skipped_count:
            log.warning(
                "missed slots skipped",
                extra={
                    "newsletter": c.newsletter,
                    "count": c.skipped_count,
                    "slots": ",".join(slot_key(x) for x in c.skipped),
                    "older_not_listed": c.skipped_truncated,
                    "reason": "older than the misfire grace window or superseded by a newer slot",
                },
            )
        for slot in c.resume:
            if self.stopping.is_set():
                return
            log.info("resuming edition", extra={"newsletter": c.newsletter, "slot": slot_key(slot)})
            self.send_slot(c.newsletter, slot, now, reason="resume")
        if c.send is not None and not self.stopping.is_set():
            log.info(
                "sending missed slot", extra={"newsletter": c.newsletter, "slot": slot_key(c.send)}
            )
            self.send_slot(c.newsletter, c.send, now, reason="catch-up")
        if c.skipped_count or c.send or c.resume:
            at = now or self.clock()
            self.store.record_run(
                "catch-up",
                at,
                self.clock(),
                True,
                {
                    "newsletter": c.newsletter,
                    "sent": slot_key(c.send) if c.send else None,
                    "resumed": [slot_key(x) for x in c.resume],
                    "skipped": [slot_key(x) for x in c.skipped],
                    "skipped_count": c.skipped_count,
                },
            )

    def tick(self, now: datetime | None = None) -> None:
        """collect, then build, then resume editions with deliveries due (temporary
        failures whose retry time came, a paused edition): the job run every
        ``[schedule] collect_every``."""
        if self.stopping.is_set():
            return
        with self._work:
            now = now or self.clock()
            try:
                report = collect(self.config, self.store, now=now)  # records its own run
            except Exception as e:
                self._failed("collect", now, e)
                return
            _log_collect_problems(report)
            if self.stopping.is_set():
                return
            try:
                build = build_feeds(self.config, self.store, now=now)
            except Exception as e:
                self._failed("build", now, e)
                return
            # The same record `feedpub build` makes, so `status` reads both alike.
            self.store.record_run("build", now, self.clock(), True, build.summary())
            log.info(
                "tick",
                extra={
                    "changed": report.changed,
                    "rejected": len(report.rejected),
                    "written": len(build.written),
                    "generation": build.generation,
                },
            )
        for slug, slot in self.due_editions(now):
            if self.stopping.is_set():
                return
            self.send_slot(slug, slot, now, reason="retry")
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            with self.store.begin() as conn:
                gone = prune_runs(conn, now - self.config.schedule.keep_runs)
            if gone:
                log.info("old runs pruned", extra={"rows": gone})

    def lifecycle(self, now: datetime | None = None) -> None:
        """Send the mail queue (confirmations, welcomes), expire sign-ups never
        confirmed, and read the bounce mailbox every ``[bounces] poll_every``."""
        if self.stopping.is_set():
            return
        with self._work:
            now = now or self.clock()
            every = self.config.bounces.poll_every
            poll = every is not None and (self._polled_at is None or now - self._polled_at >= every)
            if poll:
                self._polled_at = now
            run_lifecycle(self.config, self.store, now=now, clock=self.clock, poll=poll)

    def due_editions(self, now: datetime) -> list[tuple[str, datetime | str]]:
        """Unfinished editions to take up now (``digest.unfinished``): rows due (queued, a
        retry come due, a claim whose lease ran out) within the resume window, or nothing
        owed but not yet marked sent (a sender killed after its last message). A scheduled
        edition by its slot, a manual one (``--extra``) by its key."""
        out: list[tuple[str, datetime | str]] = []
        configured = {n.slug: n for n in self.config.newsletters}
        for u in unfinished_editions(self.store, now, self.config.delivery.lease):
            n = configured.get(u.newsletter)
            if n is None:
                continue
            window = max(newsletter_grace(self.config, n), self.config.delivery.smtp.max_age)
            if u.within(window, now):
                out.append((u.newsletter, parse_slot_key(u.slot) or u.slot))
        return out

    def newsletter_job(self, slug: str, now: datetime | None = None) -> None:
        """A newsletter's cron slot fired: send the slot (the latest at or before now)."""
        if self.stopping.is_set():
            return
        now = now or self.clock()
        try:
            n = self.config.newsletter(slug)
        except KeyError:
            log.error("job for a newsletter not in config", extra={"newsletter": slug})
            return
        grace = newsletter_grace(self.config, n)
        slot = slot_to_send(n.schedule, n.timezone, grace, now)
        if slot is None:
            log.warning(
                "slot skipped: fired later than the misfire grace",
                extra={"newsletter": slug, "grace": f"{grace.total_seconds():g}s"},
            )
            return
        self.send_slot(slug, slot, now, reason="schedule")

    def send_slot(
        self, slug: str, slot: datetime | str, now: datetime | None = None, *, reason: str
    ) -> SendReport | None:
        """Send (or resume) the edition of ``slot`` (a manual edition: its key). The edition is unique per
        (newsletter, slot) in the store, so a manual ``digest send`` of the same slot and
        this call never both send it: the later one only resumes unsent ledger rows.

        On shutdown the send stops between two messages: every message handed to the
        server is already recorded in the ledger, the rest resumes at the next start."""
        if self.stopping.is_set():
            return None
        with self._work:
            now = now or self.clock()
            try:
                report = send_newsletter(
                    self.config,
                    self.store,
                    slug,
                    now=now,
                    slot=slot if isinstance(slot, datetime) else None,
                    key=slot if isinstance(slot, str) else None,
                    take_up_others=False,  # the tick takes up every unfinished edition
                    should_stop=self.stopping.is_set,  # asked before each new message
                )
            except Exception as e:
                log.error(
                    "newsletter send failed",
                    exc_info=not isinstance(e, FeedpubError),
                    extra={"newsletter": slug, "slot": _key(slot), "error": str(e)},
                )
                return None
            if self.stopping.is_set() and report.remaining:
                log.info(
                    "send interrupted by shutdown; the ledger resumes it at the next start",
                    extra={"newsletter": slug, "slot": _key(slot), **_summary(report)},
                )
                return report
            if report.status == "paused":  # no SMTP server usable: nothing went out
                log.warning(
                    "newsletter paused: no SMTP server usable; retried at every tick",
                    extra={
                        "newsletter": slug,
                        "slot": _key(slot),
                        "reason": reason,
                        **_summary(report),
                    },
                )
                return report
            log.info(
                "newsletter sent",
                extra={
                    "newsletter": slug,
                    "slot": _key(slot),
                    "reason": reason,
                    **_summary(report),
                },
            )
            return report

    def _failed(self, kind: str, now: datetime, e: Exception) -> None:
        log.error(
            f"{kind} failed",
            exc_info=not isinstance(e, FeedpubError),
            extra={"error": str(e)},
        )
        try:
            self.store.record_run(kind, now, self.clock(), False, {"error": str(e)})
        except Exception:  # the store itself may be what failed
            log.exception("cannot record the failed run")


def _log_collect_problems(report: CollectReport) -> None:
    """Name what ``feedpub collect`` prints on the console: under the daemon the log is
    all an operator sees (a failing or disabled source, each rejected input, warnings)."""
    for src in report.sources:
        if src.status in ("error", "disabled"):
            log.warning(
                "source failed" if src.status == "error" else "source disabled",
                extra={"source": src.name, "status": src.status, "error": src.error or ""},
            )
    for r in report.rejected:
        log.warning("input rejected", extra={"input": str(r)})
    for w in report.warnings:
        log.warning("collect warning", extra={"warning": w})


def _summary(report: SendReport) -> dict[str, Any]:
    """A SendReport as log fields (prefixed: ``created`` is a LogRecord attribute)."""
    out: dict[str, Any] = {}
    for name in (
        "edition_id",
        "number",
        "status",
        "created",
        "sent",
        "failed",
        "bounced",
        "remaining",
    ):
        v = getattr(report, name, None)
        key = name if name.startswith("edition") else f"edition_{name}"
        if isinstance(v, (int, str, bool)):
            out[key] = v
        elif isinstance(v, (list, tuple)):
            out[key] = len(v)
    return out


def _key(slot: datetime | str) -> str:
    return slot if isinstance(slot, str) else slot_key(slot)


def _iso(d: datetime | None) -> str:
    return "none" if d is None else d.astimezone(UTC).isoformat(timespec="seconds")


def redact_url(url: str) -> str:
    """A store URL fit for logs: any password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable url)"
