"""The scheduler daemon behind ``feedpub run``.

Start (SQLite): take the store's daemon lock (one daemon per store; a second exits 2),
then lead at once. Start (PostgreSQL): any number of instances; each runs a
:class:`~feedpub.scheduler.leader.Leadership` and leads while it holds the ``leader``
lease (fencing token; ``[schedule] leader_lease``). Leading: reconcile config.toml with
the jobs stored in the database, decide the catch-up for each newsletter from the store
(``jobs.decide_catch_up``), then run: a collect+build tick every ``[schedule]
collect_every``, each newsletter at its cron slots in its own time zone, the lifecycle
job. An instance that stops leading pauses its scheduler at once; its running job fails
its next fenced write (build record, freeze). Every instance, leading or not, runs the
instance work (:attr:`Daemon.instance_work`: finishing and resuming unfinished editions).

Stop (SIGTERM/SIGINT via :meth:`Daemon.stop`): take no new work, let the running job
finish its current transaction (a send stops before its next message: ``should_stop``
of ``send_newsletter``), release the lease (a standby takes over within a third of the
lease), exit within ``[schedule] shutdown_timeout``.

Every job body is a plain method taking ``now`` so tests drive it with any clock; the
APScheduler job only calls :func:`run_job`, which finds the running daemon.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub.clock import Clock, system_clock
from feedpub.collect import collect
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
    ReconcilePlan,
    decide_catch_up,
    desired_jobs,
    newsletter_grace,
    parse_slot_key,
    reconcile,
    slot_to_send,
)
from feedpub.scheduler.leader import InstanceLoop, InstanceWork, Leadership
from feedpub.scheduler.lifecycle_job import run_lifecycle
from feedpub.scheduler.state import (
    _drop_since,
    _iso,
    _key,
    _log_collect_problems,
    _set_since,
    c_row,
    edition_states,
    log_send,
    log_skipped,
    prune_runs,
    redact_url,
    scheduled_since,
)
from feedpub.scheduler.watching import WatchedFolders
from feedpub.slots import slot_key
from feedpub.store import Store

__all__ = ["Daemon", "edition_states", "redact_url", "run_job", "scheduled_since"]

log = logging.getLogger("feedpub.scheduler")

STARTUP_JOB = "startup"

PRUNE_EVERY = timedelta(hours=1)

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


# ---- the daemon ---------------------------------------------------------------------


class Daemon:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = system_clock,
        lock: Lock | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.stopping = threading.Event()
        self._work = threading.Lock()  # one job body at a time, however it is called
        self._scheduler: Any = None
        self._jobs_engine: sa.Engine | None = None
        self._retiring: threading.Thread | None = None  # a former term's scheduler, closing
        self._paused = False
        self._catch_ups: list[CatchUp] = []
        self.plan: ReconcilePlan | None = None
        self._pruned_at: datetime | None = None
        self._polled_at: datetime | None = None  # the bounce mailbox ([bounces] poll_every)
        # Work every instance runs, leader or not (the leader at the end of its tick).
        self.instance_work: list[InstanceWork] = [self.resume_unfinished]
        self.leadership: Leadership | None = None
        self.lock: Lock | None = None
        if store.is_sqlite and leadership is None:
            self.lock = lock or lock_for(config.store_url, "daemon", store.engine, clock=clock)
        else:  # several instances may share the store: lead while holding the lease
            self.leadership = leadership or Leadership(
                store,
                config.schedule.leader_lease,
                clock=clock,
                on_lead=self._lead,
                on_follow=self._follow,
                can_lead=self._can_lead,
            )
        self.watched = WatchedFolders(config)
        self.instance_loop = InstanceLoop(
            self.instance_work,
            config.schedule.collect_every,
            clock=clock,
            active=lambda: not self.stopping.is_set() and not self.is_leader(),
        )

    # ---- lifecycle ------------------------------------------------------------------
    def start(self, *, paused: bool = False) -> None:
        """SQLite: take the lock (LockedError if another daemon runs), then lead.
        PostgreSQL: start the lease threads; lead whenever the lease is ours.

        ``paused``: reconcile and decide the catch-up but run nothing (tests then call
        :meth:`startup`, :meth:`tick`, :meth:`newsletter_job` with their own ``now``; with
        a leadership, they call its ``step`` themselves)."""
        global _current
        self.check_secrets()
        self._paused = paused
        if self.leadership is None:
            assert self.lock is not None
            self.lock.acquire()
            try:
                self._lead()
            except BaseException:
                self._close_scheduler()
                self.lock.release()
                raise
        elif not paused:
            self.leadership.start()
            self.instance_loop.start()
        if not paused:  # paused (tests): every tick scans, as without a watcher
            self.watched.start()
        _current = self
        log.info(
            "daemon started",
            extra={
                "newsletters": len(self.config.newsletters),
                "collect_every": f"{self.config.schedule.collect_every.total_seconds():g}s",
                "store": redact_url(self.config.store_url),
                "mode": "single (SQLite)" if self.leadership is None else "leader election",
                **({} if self.leadership is None else {"instance": self.leadership.me.instance}),
            },
        )

    def is_leader(self) -> bool:
        return self.leadership is None or self.leadership.leading()

    @property
    def fence(self) -> Callable[[Connection], None] | None:
        """What leader-only writes call inside their transaction (None: SQLite, one daemon)."""
        return None if self.leadership is None else self.leadership.fence

    def _can_lead(self) -> bool:
        return not self.stopping.is_set() and (
            self._retiring is None or not self._retiring.is_alive()
        )

    def _lead(self) -> None:
        """Begin a term: the scheduler with the stored jobs, the catch-up decided."""
        global _current
        _current = self
        now = self.clock()
        try:
            self._jobs_engine = engine.jobstore_engine(self.config.store_url, self.store.engine)
            sched = engine.make_scheduler(self._jobs_engine)
            sched.start(paused=True)
            self._scheduler = sched
            self._catch_ups = self.prepare(now)
            if not self._paused:
                engine.run_once(sched, STARTUP_JOB, run_job, now)
                sched.resume()
        except BaseException:
            self._close_scheduler()
            raise

    def _follow(self, reason: str) -> None:
        """End a term: no job fires from now on; the running one finishes (its next fenced
        write fails) while the scheduler closes on a thread of its own."""
        sched, jobs_engine = self._scheduler, self._jobs_engine
        self._scheduler = self._jobs_engine = None
        if sched is None:
            return
        sched.pause()

        def retire() -> None:
            engine.shutdown(sched)
            if jobs_engine is not None and jobs_engine is not self.store.engine:
                jobs_engine.dispose()

        self._retiring = threading.Thread(target=retire, name="feedpub-retire", daemon=True)
        self._retiring.start()

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
        """Stop taking work, wait for the running job, release the lock or the lease (a
        standby then takes over at its next round). True when clean."""
        global _current
        self.stopping.set()
        if timeout is None:
            timeout = self.config.schedule.shutdown_timeout.total_seconds()
        log.info("stopping", extra={"timeout": f"{timeout:g}s"})
        done = threading.Event()

        def _shutdown() -> None:
            self._close_scheduler()
            self.instance_loop.stop(timeout)
            if self._retiring is not None:
                self._retiring.join(timeout)
            done.set()

        t = threading.Thread(target=_shutdown, name="feedpub-shutdown", daemon=True)
        t.start()
        clean = done.wait(timeout)
        self.watched.stop()
        if clean:
            if self.leadership is not None:
                self.leadership.stop()
                self.leadership.release()
            elif self.lock is not None:
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
        if not self.is_leader():
            return
        self.tick(now)
        for c in self._catch_ups:
            if self.stopping.is_set():
                return
            self.run_catch_up(c, now)
        self._catch_ups = []

    def run_catch_up(self, c: CatchUp, now: datetime | None = None) -> None:
        log_skipped(c)
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
            self.store.record_run("catch-up", now or self.clock(), self.clock(), True, c_row(c))

    def tick(self, now: datetime | None = None) -> None:
        """collect, then build, then resume editions with deliveries due (temporary
        failures whose retry time came, a paused edition): the job run every
        ``[schedule] collect_every``. Leader only."""
        if self.stopping.is_set() or not self.is_leader():
            return
        with self._work:
            now = now or self.clock()
            try:
                last = self.watched.last_run_id
                sole = last is not None and self.store.last_run_id("collect") == last
                skip = self.watched.skip(now, sole_collector=sole)  # folders seen unchanged
                hints = self.watched.hints()  # and where the others changed
                report = collect(  # records its run
                    self.config, self.store, now=now, skip=skip, hints=hints
                )
            except Exception as e:
                self._failed("collect", now, e)
                return
            self.watched.collected(report, now)
            _log_collect_problems(report)
            if self.stopping.is_set():
                return
            try:
                build = build_feeds(self.config, self.store, now=now, fence=self.fence)
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
        for work in list(self.instance_work):
            if self.stopping.is_set():
                return
            work(now)
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            with self.store.begin() as conn:
                gone = prune_runs(conn, now - self.config.schedule.keep_runs)
            if gone:
                log.info("old runs pruned", extra={"rows": gone})

    def lifecycle(self, now: datetime | None = None) -> None:
        """Send the mail queue (confirmations, welcomes), expire sign-ups never
        confirmed, and read the bounce mailbox every ``[bounces] poll_every``. Leader only."""
        if self.stopping.is_set() or not self.is_leader():
            return
        with self._work:
            now = now or self.clock()
            every = self.config.bounces.poll_every
            poll = every is not None and (self._polled_at is None or now - self._polled_at >= every)
            if poll:
                self._polled_at = now
            run_lifecycle(self.config, self.store, now=now, clock=self.clock, poll=poll)

    def resume_unfinished(self, now: datetime) -> None:
        """Instance work: finish or resume every unfinished edition due now (any instance;
        the fenced ledger claims keep two instances off the same rows)."""
        for slug, slot in self.due_editions(now):
            if self.stopping.is_set():
                return
            self.send_slot(slug, slot, now, reason="retry")

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
        if self.stopping.is_set() or not self.is_leader():
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
                    fence=self.fence,  # a new freeze needs the leader lease
                )
            except Exception as e:
                log.error(
                    "newsletter send failed",
                    exc_info=not isinstance(e, FeedpubError),
                    extra={"newsletter": slug, "slot": _key(slot), "error": str(e)},
                )
                return None
            log_send(report, slug, _key(slot), reason, interrupted=self.stopping.is_set())
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
