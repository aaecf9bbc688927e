"""Atomic writes for many files: temp file, fsync, rename (POSIX rename(2) is atomic),
then one fsync per folder at the end instead of one per file.

Same guarantees as :func:`feedpub.atomicfile.write_atomic` for each file (a reader sees
the old or the new bytes, never a mix; a crash leaves the old file), with the folder
entries made durable once per build: a build writes thousands of archive pages.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirty: set[Path] = set()

    def write(self, rel: str, data: bytes, *, skip_if_same: bool = True) -> bool:
        """Write ``data`` to ``root/rel`` atomically; False when it already holds ``data``."""
        path = self.root / rel
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
        self._dirty.add(path.parent)
        return True

    def remove(self, rel: str) -> None:
        path = self.root / rel
        path.unlink(missing_ok=True)
        self._dirty.add(path.parent)

    def sync(self) -> None:
        """fsync every folder that gained or lost an entry (makes the renames durable)."""
        for folder in sorted(self._dirty):
            with contextlib.suppress(OSError):
                fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._dirty.clear()
