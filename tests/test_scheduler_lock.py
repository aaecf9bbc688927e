"""The daemon lock: one holder per store, named in the refusal, gone with its process; a
status probe (a shared flock) is waited out, not taken for another daemon."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from feedpub.errors import ConfigError, LockedError, StoreError
from feedpub.locks import FileLock, lock_for


def test_lock_for_sqlite_is_a_file_next_to_the_database(tmp_path: Path) -> None:
    lock = lock_for(f"sqlite:///{tmp_path}/feedpub.db")
    assert isinstance(lock, FileLock)
    assert lock.path == tmp_path / "feedpub.db.daemon.lock"
    with pytest.raises(ConfigError, match=r"store\.url"):
        lock_for("sqlite:///:memory:")


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first, second = FileLock(path), FileLock(path)
    first.acquire()
    try:
        with pytest.raises(LockedError, match=rf"already running .*pid {os.getpid()}"):
            second.acquire()
        assert second.holder() is not None and second.holder()["pid"] == os.getpid()  # type: ignore[index]
    finally:
        first.release()
    assert second.holder() is None
    with second:  # free again
        assert second.held
    assert not second.held


def test_a_status_probe_does_not_make_a_starting_daemon_think_another_one_runs(
    tmp_path: Path,
) -> None:
    # `feedpub status` probes the lock with a shared flock. A daemon (re)started by systemd
    # at that instant was refused with "another feedpub daemon is already running" and
    # exit 2, which RestartPreventExitStatus=2 leaves down for good.
    path = tmp_path / "feedpub.db.daemon.lock"
    path.write_text("")
    probe = os.open(path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what FileLock.holder() does
    release = threading.Timer(0.2, lambda: fcntl.flock(probe, fcntl.LOCK_UN))
    release.start()
    lock = FileLock(path)
    try:
        lock.acquire()  # waits out the probe instead of refusing
        assert lock.held
    finally:
        release.join()
        lock.release()
        os.close(probe)
    # A real holder (exclusive) is still refused at once.
    holder = FileLock(path)
    holder.acquire()
    try:
        with pytest.raises(LockedError):
            FileLock(path).acquire()
    finally:
        holder.release()


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from feedpub.locks import FileLock\n"
        f"FileLock(Path({str(path)!r})).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        lock = FileLock(path)
        with pytest.raises(LockedError, match=f"pid {proc.pid}"):
            lock.acquire()
        proc.send_signal(signal.SIGKILL)  # no cleanup code runs
        proc.wait(timeout=10)
        lock.acquire()  # the kernel released it
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unusable_lock_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot open the lock file .*missing"):
        FileLock(tmp_path / "missing" / "x.lock").acquire()
