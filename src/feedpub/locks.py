"""One small lock interface: "only one of these per store" (the daemon, for now).

- SQLite: an exclusive ``flock`` on a file next to the database (``feedpub.db.daemon.lock``).
  The kernel drops it when the process dies (even on SIGKILL), so a crash never leaves a
  stale lock; the file only carries the holder's pid and start time for the error message.
- PostgreSQL (later): a session advisory lock (``pg_try_advisory_lock``) on a dedicated
  connection implements the same interface; it too dies with its session.

Callers only see :class:`Lock` (``acquire``/``release``/``holder``) and :func:`lock_for`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import sqlalchemy as sa

from feedpub.clock import Clock
from feedpub.errors import ConfigError, LockedError, StoreError


class Lock(Protocol):
    name: str

    def acquire(self) -> None:
        """Take the lock without waiting; raise LockedError naming the holder if taken."""

    def release(self) -> None: ...

    def holder(self) -> dict[str, Any] | None:
        """Who holds it (pid, started, where), or None when nobody does. Advisory only."""

    def __enter__(self) -> Lock: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


# How long ``acquire`` waits out shared ``holder()`` probes (``feedpub status``), which
# hold a shared flock for microseconds; an exclusive holder is still refused at once.
PROBE_GRACE = 5.0


def _only_shared_holders(fd: int) -> bool:
    """True when nobody holds the lock exclusively (only ``holder()`` probes share it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


class _ContextLock:
    """``with lock:`` acquires and releases, for every implementation."""

    def acquire(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class FileLock(_ContextLock):
    """An exclusive, non-blocking ``flock`` on ``path``; released by the kernel on exit."""

    def __init__(
        self, path: Path, name: str = "daemon", wait: float = 0.0, *, clock: Clock | None = None
    ) -> None:
        self.clock = clock
        self.path = path
        self.name = name
        self.wait = wait  # seconds to wait for a holder to finish before LockedError
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(
                f"cannot open the lock file {self.path}: {e.strerror}; the daemon needs to "
                "write beside the database (check the folder's owner and permissions)"
            ) from None
        deadline = time.monotonic() + self.wait
        probes_deadline = time.monotonic() + PROBE_GRACE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                if time.monotonic() < probes_deadline and _only_shared_holders(fd):
                    time.sleep(0.01)  # a `status` probe, not a holder: it lets go at once
                    continue
            os.close(fd)
            info = self._read_info()
            who = f"pid {info['pid']}" if info and "pid" in info else "another process"
            since = f" since {info['started']}" if info and "started" in info else ""
            one = (
                "; a SQLite store runs one daemon, several instances need PostgreSQL "
                "(docs/deploy.md)"
                if self.name == "daemon"
                else ""
            )
            raise LockedError(
                f"another feedpub {self.name} is already running on this store ({who}{since}; "
                f"lock {self.path}); stop it first, or use 'feedpub status' to see what it does"
                + one
            ) from None
        mine: dict[str, object] = {"pid": os.getpid()}
        if self.clock is not None:
            mine["started"] = self.clock().isoformat(timespec="seconds")
        info_text = json.dumps(mine)
        os.ftruncate(fd, 0)
        os.pwrite(fd, info_text.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for `status` to report
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def holder(self) -> dict[str, Any] | None:
        if self._fd is not None:
            return {"pid": os.getpid(), "lock": str(self.path)}
        if not self.path.exists():
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            # A shared probe: succeeds only when nobody holds the exclusive lock.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            info = self._read_info() or {}
            return {**info, "lock": str(self.path)}
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _read_info(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


class AdvisoryLock(_ContextLock):
    """PostgreSQL session advisory lock with the same interface (not yet exercised in CI:
    no PostgreSQL server in the test environment)."""

    def __init__(self, engine: sa.Engine, name: str = "daemon", wait: float = 0.0) -> None:
        self.engine = engine
        self.name = name
        self.wait = wait
        # pg advisory keys are bigint: a stable 63-bit hash of the lock name.
        self.key = int.from_bytes(hashlib.sha256(f"feedpub:{name}".encode()).digest()[:8]) >> 1
        self._conn: sa.Connection | None = None

    def acquire(self) -> None:
        if self._conn is not None:
            return
        conn = self.engine.connect()
        deadline = time.monotonic() + self.wait
        while True:
            ok = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar()
            conn.commit()
            if ok or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if not ok:
            conn.close()
            raise LockedError(
                f"another feedpub {self.name} is already running on this store "
                f"(PostgreSQL advisory lock {self.key}); stop it first"
            )
        self._conn = conn

    def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
            conn.commit()
        conn.close()

    def holder(self) -> dict[str, Any] | None:
        if self._conn is not None:
            return {"pid": os.getpid(), "lock": f"advisory:{self.key}"}
        with self.engine.connect() as conn:
            pid = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": self.key},
            ).scalar()
        return None if pid is None else {"backend_pid": pid, "lock": f"advisory:{self.key}"}


def sqlite_path(store_url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for memory or other backends)."""
    url = sa.engine.make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def lock_for(
    store_url: str,
    name: str = "daemon",
    engine: sa.Engine | None = None,
    wait: float = 0.0,
    *,
    clock: Clock | None = None,
) -> Lock:
    """The lock guarding ``name`` on this store; ``wait`` seconds for a holder to let go.
    With a ``clock``, a lock file also records since when it is held (``feedpub status``)."""
    db = sqlite_path(store_url)
    if db is not None:
        return FileLock(db.with_name(f"{db.name}.{name}.lock"), name, wait, clock=clock)
    if sa.engine.make_url(store_url).get_backend_name() == "postgresql" and engine is not None:
        return AdvisoryLock(engine, name, wait)
    raise ConfigError(
        f"no lock for a {sa.engine.make_url(store_url).get_backend_name()!r} store; "
        "use a SQLite file (sqlite:///feedpub.db) or PostgreSQL",
        key="store.url",
    )
