"""Atomic writes for many files: temp file, fsync, rename (POSIX rename(2) is atomic),
then one fsync per folder at the end instead of one per file.

Same guarantees as :func:`feedpub.atomicfile.write_atomic` for each file (a reader sees
the old or the new bytes, never a mix; a crash leaves the old file), with the folder
entries made durable once per build: a build writes thousands of archive pages.

The write itself (temp file, write, fsync, rename) runs on a few writer threads: fsync
waits on the disk without holding the GIL, so rendering goes on meanwhile. Whether a
file changes is decided at once, in the caller's thread (the result of :meth:`write`),
so what a build reports does not depend on the threads; writes to one path happen in
the order they were asked for; :meth:`sync` waits for every write (raising the first
error) before it makes the folders durable, and stops the threads.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from feedpub.atomicfile import fsync_dir, write_atomic

WRITER_THREADS = 4
# At most this many bytes wait for a writer thread; write() blocks beyond it.
MAX_PENDING_BYTES = 8 * 1024 * 1024
# The first writes of a build are made in place: a build of a few files (the incremental
# one) does not start threads.
INLINE_WRITES = 32


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        return False


class OutputDir:
    def __init__(self, root: Path, *, threads: int | None = None) -> None:
        self.root = root
        self.threads = WRITER_THREADS if threads is None else threads  # 0: write in place
        self._dirty: set[Path] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[Path, Future[None]] = {}
        self._errors: list[BaseException] = []
        self._room = threading.Condition()
        self._queued = 0  # bytes handed to the threads, not yet written
        # folder -> the names in it: listed once, then kept up to date by write/remove
        # (the build holds the build lock: nobody else writes feed files meanwhile).
        self._names: dict[Path, set[str]] = {}
        self._writes = 0

    def write(self, rel: str, data: bytes, *, skip_if_same: bool = True) -> bool:
        """Write ``data`` to ``root/rel`` atomically; False when it already holds ``data``."""
        path = self.root / rel
        self._wait_for(path)
        names = self._listed(path.parent)
        if skip_if_same and path.name in names and _same(path, data):
            return False
        names.add(path.name)
        self._writes += 1
        if self.threads <= 0 or self._writes <= INLINE_WRITES:
            write_atomic(path, data, skip_if_same=False, sync_dir=False)
        else:
            self._submit(path, data)
        self._dirty.add(path.parent)
        return True

    def remove(self, rel: str) -> None:
        path = self.root / rel
        self._wait_for(path)
        self._listed(path.parent).discard(path.name)
        path.unlink(missing_ok=True)
        self._dirty.add(path.parent)

    def sync(self) -> None:
        """Wait for every write, then fsync every folder that gained or lost an entry
        (makes the renames durable)."""
        self._drain()
        for folder in sorted(self._dirty):
            fsync_dir(folder)
        self._dirty.clear()

    def _listed(self, folder: Path) -> set[str]:
        """The names in ``folder``: one listing instead of a stat per file (a full build
        into a new folder looks at nothing more)."""
        names = self._names.get(folder)
        if names is None:
            try:
                names = set(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError):
                names = set()
            self._names[folder] = names
        return names

    # ---- the writer threads ------------------------------------------------------------
    def _submit(self, path: Path, data: bytes) -> None:
        size = len(data)
        with self._room:
            while self._queued and self._queued + size > MAX_PENDING_BYTES:
                self._room.wait()
            self._queued += size
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="feedpub-write")
        self._pending[path] = self._pool.submit(self._write, path, data)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data, skip_if_same=False, sync_dir=False)
        finally:
            with self._room:
                self._queued -= len(data)
                self._room.notify_all()

    def _wait_for(self, path: Path) -> None:
        fut = self._pending.pop(path, None)
        if fut is not None:
            fut.result()
        if len(self._pending) > 4096:  # forget the finished ones now and then
            for p, f in list(self._pending.items()):
                if f.done():
                    del self._pending[p]
                    if f.exception() is not None:
                        self._errors.append(f.exception())  # type: ignore[arg-type]

    def _drain(self) -> None:
        pending, self._pending = self._pending, {}
        errors, self._errors = self._errors, []
        for fut in pending.values():
            exc = fut.exception()
            if exc is not None:
                errors.append(exc)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if errors:
            raise errors[0]
