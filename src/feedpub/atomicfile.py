"""Atomic file writes: temp file in the same folder, fsync, rename (POSIX rename(2) is
atomic), so a reader never sees a half-written file and a crash leaves the old one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(
    path: Path, data: bytes, *, skip_if_same: bool = True, sync_dir: bool = True
) -> bool:
    """Write ``data`` to ``path`` atomically. Returns False (and writes nothing) when the
    file already holds exactly ``data`` and ``skip_if_same`` is set.

    ``sync_dir=False`` leaves the folder's fsync (which makes the rename durable) to the
    caller, who writes many files and calls :func:`fsync_dir` once per folder."""
    if skip_if_same:
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)
    return True


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# A temp file younger than this may belong to a writer still at work (a digest archive
# page is written without the build lock); an older one is a killed writer's leftover.
STALE_TEMP_SECONDS = 300.0


def sweep_temp_files(folder: Path, *, now: float, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete the ``.NAME.XXXX.tmp`` files a killed :func:`write_atomic` left under
    ``folder`` (``now``: the wall-clock time in seconds, as file mtimes are). Returns how
    many went."""
    removed = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            p = os.path.join(dirpath, name)
            try:
                if now - os.lstat(p).st_mtime > older_than:
                    os.unlink(p)
                    removed += 1
            except OSError:
                continue
    return removed
