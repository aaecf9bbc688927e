"""Several real ``feedpub run`` processes on one PostgreSQL store: the newsroom they share
(config.toml, content, outbox, feeds folder), who leads (the ``leases`` row), and the
processes themselves. Used by tests/test_leader_takeover.py and bench/scale.py.

Subprocesses keep the real date (``real_now``): the newsletter's daily slot is put half an
hour in the past and the daemon's "scheduled since" before it, so the first leader's
start-up catch-up sends that slot, and no other slot falls due while a test runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from feedpub import leases
from feedpub import schema as s
from feedpub.config import load_config
from feedpub.digest import subscribers as subs
from feedpub.store import Store

SECRET_ENV = "FEEDPUB_TEST_SECRET"

CONFIG = """
[site]
title = "Cluster Times"
base_url = "https://news.example/"
language = "en"
timezone = "UTC"
default_beat = "world"

[store]
url = "{url}"

[output]
dir = "feeds"
items_per_feed = 5

[[sources]]
type = "folder"
path = "content"

[[beats]]
slug = "world"
title = "World"

[[beats]]
slug = "technology"
title = "Technology"
tags = ["tech"]

[[newsletters]]
slug = "daily"
title = "Cluster Daily"
from = "Cluster Times <news@news.example>"
schedule = "{minute} {hour} * * *"
timezone = "UTC"
postal_address = "1 Test Street, Testville"
lookback = "P30D"

[schedule]
collect_every = {collect_every}
leader_lease = {lease}
shutdown_timeout = 20

[delivery]
backend = "outbox"
outbox_dir = "outbox"

[logging]
level = "INFO"

[secrets]
token_key_env = "{secret_env}"
"""


def wall_now() -> datetime:
    """The real wall clock (subprocesses read it even under ``--wall-clock``)."""
    try:
        from tests.conftest import real_now

        return real_now()
    except ImportError:  # pragma: no cover - bench/scale.py outside pytest
        return datetime.now(UTC)


@dataclass
class Cluster:
    root: Path
    store_url: str
    lease: int = 3  # seconds
    collect_every: int = 2
    articles: int = 6
    subscribers: int = 20
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    slot: datetime | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    def setup(self) -> None:
        now = wall_now()
        slot = (now - timedelta(minutes=30)).replace(second=0, microsecond=0)
        self.slot = slot
        self.root.mkdir(parents=True, exist_ok=True)
        content = self.root / "content"
        content.mkdir(exist_ok=True)
        for i in range(self.articles):
            when = (now - timedelta(days=1, minutes=i)).isoformat(timespec="seconds")
            (content / f"story-{i}.md").write_text(
                f"---\ntitle: Story number {i}\ndate: {when}\nauthor: Reporter {i % 3}\n"
                f"beat: {'technology' if i % 2 else 'world'}\n---\nBody of story {i}.\n",
                encoding="utf-8",
            )
        self.config_path.write_text(
            CONFIG.format(
                url=self.store_url,
                minute=slot.minute,
                hour=slot.hour,
                collect_every=self.collect_every,
                lease=self.lease,
                secret_env=SECRET_ENV,
            ),
            encoding="utf-8",
        )
        os.environ.setdefault(SECRET_ENV, "cluster-secret")
        cfg = load_config(self.config_path)
        store = Store(cfg.store_url)
        try:
            store.migrate()
            with store.begin() as conn:
                for i in range(self.subscribers):
                    subs.add(cfg, conn, f"reader{i}@example.com", newsletters=["daily"], now=now)
                # The daemon has scheduled "daily" since before the slot: the slot is owed.
                conn.execute(
                    sa.insert(s.meta).values(
                        key="scheduler.since.daily",
                        value=(slot - timedelta(hours=1)).isoformat(),
                    )
                )
        finally:
            store.close()

    # ---- processes ---------------------------------------------------------------------
    def start(self, n: int = 1) -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, SECRET_ENV: os.environ.get(SECRET_ENV, "cluster-secret")}
        env.pop("FEEDPUB_TEST_WALL_CLOCK", None)
        started = []
        for _ in range(n):
            i = len(self.procs)
            log = open(self.root / f"run{i}.log", "wb")  # noqa: SIM115 - the child keeps it
            p = subprocess.Popen(
                [sys.executable, "-m", "feedpub", "--config", str(self.config_path), "run"],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            self.procs.append(p)
            started.append(p)
        return started

    def proc(self, pid: int) -> subprocess.Popen[bytes]:
        return next(p for p in self.procs if p.pid == pid)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- run{i}.log ---\n" + (self.root / f"run{i}.log").read_text(errors="replace")
            for i in range(len(self.procs))
        )

    # ---- the store -----------------------------------------------------------------------
    def engine(self) -> sa.Engine:
        return sa.create_engine(self.store_url, poolclass=sa.pool.NullPool)

    def leader(self, engine: sa.Engine) -> leases.LeaseRow | None:
        """The lease row when someone holds it now (by the real clock), else None."""
        with engine.connect() as conn:
            row = leases.current(conn, "leader")
        return row if row is not None and row.held(wall_now()) else None

    def wait_for(
        self, what: Callable[[], object], timeout: float, step: float = 0.02, name: str = ""
    ) -> object:
        deadline = time.monotonic() + timeout
        while True:
            got = what()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out ({timeout:g}s) waiting for {name}\n{self.logs()}")
            time.sleep(step)

    def wait_leader(
        self, engine: sa.Engine, timeout: float, other_than: int | None = None
    ) -> leases.LeaseRow:
        def probe() -> leases.LeaseRow | None:
            row = self.leader(engine)
            if row is None or (other_than is not None and row.pid == other_than):
                return None
            return row

        got = self.wait_for(probe, timeout, name="a leader")
        assert isinstance(got, leases.LeaseRow)
        return got
