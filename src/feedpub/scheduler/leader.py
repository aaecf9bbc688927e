"""One leader among several ``feedpub run`` instances on one PostgreSQL store.

Every instance runs a :class:`Leadership`: a thread that renews the ``leader`` lease
(``feedpub.leases``) every third of ``[schedule] leader_lease`` while it leads, or tries to
take it while it stands by; and a watchdog thread that makes the instance *stop leading*
(``on_follow``) when its last successful renewal is older than ``lease - margin``
(``margin`` a quarter lease), measured on this process's monotonic clock from the moment
that renewal was *sent*. Others may take the lease only once it has expired by their
clock, so a leader cut off from the store stops before anyone else starts, whatever the
network does, as long as the hosts' clocks agree within the margin (NTP).

Leader-only writes (a build's record, a newsletter's freeze) call :meth:`Leadership.fence`
inside their transaction: it fails (:class:`~feedpub.leases.NotLeader`) once this instance
stepped down or its token was superseded.

:class:`InstanceLoop` runs the work *every* instance does, leader or not (finishing and
resuming unfinished editions; batch sending plugs in here): a list of
:data:`InstanceWork` callables, each given ``now``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import leases
from feedpub.clock import Clock
from feedpub.store import Store

log = logging.getLogger("feedpub.scheduler")

LEADER = "leader"  # the lease's name
InstanceWork = Callable[[datetime], None]

WATCH_EVERY = 0.2  # seconds between two watchdog checks


class Leadership:
    def __init__(
        self,
        store: Store,
        lease: timedelta,
        *,
        clock: Clock,
        on_lead: Callable[[], None],
        on_follow: Callable[[str], None],
        can_lead: Callable[[], bool] = lambda: True,
        identity: leases.Identity | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        name: str = LEADER,
    ) -> None:
        self.store = store
        self.lease = lease
        self.clock = clock
        self.on_lead = on_lead
        self.on_follow = on_follow
        self.can_lead = can_lead
        self.me = identity or leases.Identity.new()
        self.mono = monotonic
        self.name = name
        self.renew_every = lease.total_seconds() / 3
        self.give_up_after = lease.total_seconds() * 3 / 4  # stop a quarter lease early
        self._token: int | None = None
        self._deadline = 0.0  # monotonic instant: stop leading unless renewed before
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seen: str | None = None  # the leader last logged while standing by

    # ---- state -----------------------------------------------------------------------
    @property
    def token(self) -> int | None:
        return self._token

    def leading(self) -> bool:
        with self._mutex:
            return self._token is not None and self.mono() < self._deadline

    def fence(self, conn: Connection) -> None:
        """Inside a leader-only transaction: NotLeader unless we still lead (see module)."""
        token = self._token
        if token is None or not self.leading():
            raise leases.NotLeader("this instance is not the leader (any more)")
        leases.check(conn, self.name, self.me, token, self.clock())

    # ---- one round -------------------------------------------------------------------
    def step(self, now: datetime | None = None) -> bool:
        """Renew the lease we hold, or try to take it; True when leading afterwards."""
        sent = self.mono()
        token = self._token
        if token is None and not self.can_lead():
            return False  # the previous term's job is still winding down
        now = now or self.clock()
        try:
            with self.store.begin() as conn:
                got = leases.acquire(conn, self.name, self.me, token, self.lease, now)
        except sa.exc.SQLAlchemyError as e:
            # Unknown outcome: keep the deadline as it was; the watchdog steps down in time.
            log.warning("leader lease: store unreachable", extra={"error": str(e).splitlines()[0]})
            return self.leading()
        became = False
        with self._mutex:
            if self._token != token:  # the watchdog stepped down meanwhile
                return False
            if got is None:
                if token is None:
                    self._log_standby(now)
                    return False
                self._token = None
                lost = True
            else:
                lost = False
                self._token = got
                self._deadline = sent + self.give_up_after
                became = token is None
        if lost:
            self._step_down("the lease was taken over or released")
            return False
        if became:
            self._seen = None
            log.info(
                "leading",
                extra={"instance": self.me.instance, "token": got, "lease": f"{self.lease}"},
            )
            try:
                self.on_lead()
            except Exception as e:
                log.exception("cannot start leading", extra={"error": str(e)})
                self.release(now)
                return False
        return True

    def watch(self) -> None:
        """Step down when the deadline passed without a renewal (the watchdog's check)."""
        with self._mutex:
            expired = self._token is not None and self.mono() >= self._deadline
            if expired:
                self._token = None
        if expired:
            self._step_down("could not renew the lease in time")

    def release(self, now: datetime | None = None) -> None:
        """Stop leading and free the lease at once (a clean shutdown: quick handover)."""
        with self._mutex:
            token, self._token = self._token, None
        if token is None:
            return
        self._step_down("released")
        try:
            with self.store.begin() as conn:
                leases.release(conn, self.name, self.me, token, now or self.clock())
        except sa.exc.SQLAlchemyError as e:
            log.warning("leader lease: cannot release", extra={"error": str(e).splitlines()[0]})

    def _step_down(self, reason: str) -> None:
        log.warning("stopped leading", extra={"instance": self.me.instance, "reason": reason})
        self.on_follow(reason)

    def _log_standby(self, now: datetime) -> None:
        try:
            with self.store.read() as conn:
                row = leases.current(conn, self.name)
        except sa.exc.SQLAlchemyError:
            return
        who = f"{row.holder}@{row.host}:{row.pid}" if row and row.held(now) else None
        if who is not None and who != self._seen:
            self._seen = who
            log.info("standing by", extra={"leader": who, "instance": self.me.instance})

    # ---- threads ---------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name="feedpub-lease", daemon=True),
            threading.Thread(target=self._watchdog, name="feedpub-lease-watch", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop renewing and watching (then :meth:`release`)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=max(5.0, self.renew_every))
        self._threads = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # never let the lease thread die
                log.exception("leader lease step failed")
            self._stop.wait(self.renew_every)

    def _watchdog(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            self.watch()


class InstanceLoop:
    """Runs ``work`` every ``every`` on a thread of its own, while ``active()`` says so
    (a standing-by instance; the leader runs the same work at the end of its tick)."""

    def __init__(
        self,
        work: list[InstanceWork],
        every: timedelta,
        *,
        clock: Clock,
        active: Callable[[], bool],
    ) -> None:
        self.work = work
        self.every = every.total_seconds()
        self.clock = clock
        self.active = active
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> None:
        for job in list(self.work):
            if self._stop.is_set() or not self.active():
                return
            try:
                job(now or self.clock())
            except Exception as e:
                log.exception("instance work failed", extra={"error": str(e)})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="feedpub-instance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()
