"""Crash safety: `feedpub digest send` in a subprocess, SIGKILLed again and again.

The aiosmtpd server in this process kills the sender at chosen points: while it waits for
the reply to the k-th message (the message is kept but the sender never learns it: the
worst case), just after a reply, and at fixed times after start (imports, freezing,
composing). After each kill the ledger's in-flight rows (``sending``, claimed by the dead
process) are recorded; then the send is restarted. At the end every subscriber must have
the edition, and every duplicate must be a message that was in flight at a kill, at most
``pool_size`` per kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from feedpub import schema as s
from tests.conftest import Newsroom, real_now
from tests.smtpserver import SmtpTestServer
from tests.test_smtp_delivery import edition_status, make_room

SUBSCRIBERS = 80
POOL = 4
# (messages the server must keep in this run before the kill, where the kill lands):
# "data": while the server holds that message, before its 250 (the sender never learns it
# was kept: the worst case); "reply": just after the 250; "rcpt": at the next RCPT TO.
KILLS = [(1, "data"), (3, "reply"), (4, "rcpt"), (6, "data"), (5, "reply"), (7, "data"),
         (2, "rcpt"), (8, "data"), (5, "reply"), (6, "data"), (4, "rcpt"), (7, "data")]  # fmt: skip
STARTUP_KILL = 0.05  # seconds after start: during imports (nothing claimed yet)


def _sender(config: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "feedpub", "--config", str(config), "digest", "send", "daily",
           "--no-progress"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)


def _in_flight(store_url: str) -> set[str]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            q = sa.select(s.deliveries.c.email).where(s.deliveries.c.status == "sending")
            return set(conn.execute(q).scalars())
    finally:
        engine.dispose()


class Killer:
    """Hooks on the test server that SIGKILL the current sender at the armed point."""

    def __init__(self, srv: SmtpTestServer) -> None:
        self.srv = srv
        self.proc: subprocess.Popen[bytes] | None = None
        self.at: int | None = None  # total kept count that triggers
        self.mode = ""
        self.lock = threading.Lock()
        srv.on_data = self.on_data
        srv.on_rcpt = self.on_rcpt

    def arm(self, proc: subprocess.Popen[bytes], kept: int, mode: str) -> None:
        with self.lock:
            self.proc, self.at, self.mode = proc, len(self.srv.received) + kept, mode

    def disarm(self) -> None:
        with self.lock:
            self.at = None

    def _fire(self, mode: str, reached: bool) -> None:
        with self.lock:
            if self.at is None or self.mode != mode or not reached or self.proc is None:
                return
            victim, self.at = self.proc, None
        if mode == "reply":  # let the 250 go out first
            threading.Timer(0.002, victim.send_signal, (signal.SIGKILL,)).start()
        else:
            victim.send_signal(signal.SIGKILL)

    def on_data(self, kept: int) -> None:
        at = self.at
        self._fire("data", at is not None and kept >= at)
        self._fire("reply", at is not None and kept >= at)

    def on_rcpt(self, _address: str) -> None:
        at = self.at
        self._fire("rcpt", at is not None and len(self.srv.received) >= at)


def test_sigkill_at_many_points_loses_nobody_and_duplicates_only_in_flight(
    newsroom: Newsroom,
) -> None:
    with SmtpTestServer() as srv:
        store, emails = make_room(
            newsroom, srv.port, SUBSCRIBERS, now=real_now(), pool_size=POOL, timeout=5
        )
        store.close()
        url = newsroom.config().store_url
        killer = Killer(srv)
        kills: list[tuple[str, set[str]]] = []
        runs = 0
        # A kill during start-up, then the kill points, then a run left to finish.
        for point in [None, *KILLS, "finish"]:
            proc = _sender(newsroom.config_path)
            runs += 1
            if isinstance(point, tuple):
                killer.arm(proc, *point)
            elif point is None:
                try:
                    proc.wait(timeout=STARTUP_KILL)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
            killer.disarm()
            if proc.returncode == -signal.SIGKILL:
                kills.append((str(point), _in_flight(url)))
                continue
            assert proc.returncode == 0, (out + err).decode()
            assert point == "finish", f"the send finished before kill point {point}"
        got = srv.by_recipient()

    counts = {e: len(got.get(e, [])) for e in emails}
    assert min(counts.values()) >= 1, [e for e, n in counts.items() if n == 0]  # nobody lost
    duplicated = {e: n - 1 for e, n in counts.items() if n > 1}
    window: set[str] = set()
    for _, flying in kills:
        assert len(flying) <= POOL  # in flight = at most one message per pooled connection
        window |= flying
    assert set(duplicated) <= window  # each duplicate was in flight at a kill
    for e, extra in duplicated.items():
        assert extra <= sum(e in flying for _, flying in kills)
    assert len(kills) == 1 + len(KILLS)
    assert edition_status(newsroom.store()) == "sent"
    print(
        f"\ncrash test: {len(kills)} SIGKILLs over {runs} runs, {SUBSCRIBERS} subscribers, "
        f"pool {POOL}: lost 0, duplicates {sum(duplicated.values())} "
        f"({len(duplicated)} subscribers), in flight at each kill {[len(f) for _, f in kills]}"
    )
