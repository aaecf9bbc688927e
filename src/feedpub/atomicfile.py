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
