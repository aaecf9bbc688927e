"""Atomic writes for many files: temp file, fsync, rename (POSIX rename(2) is atomic),
then one fsync per folder at the end instead of one per file.

Same guarantees as :func:`feedpub.atomicfile.write_atomic` for each file (a reader sees
the old or the new bytes, never a mix; a crash leaves the old file), with the folder
entries made durable once per build: a build writes thousands of archive pages.
"""

from __future__ import annotations

from pathlib import Path

from feedpub.atomicfile import fsync_dir, write_atomic


class OutputDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirty: set[Path] = set()

    def write(self, rel: str, data: bytes, *, skip_if_same: bool = True) -> bool:
        """Write ``data`` to ``root/rel`` atomically; False when it already holds ``data``."""
        path = self.root / rel
        if not write_atomic(path, data, skip_if_same=skip_if_same, sync_dir=False):
            return False
        self._dirty.add(path.parent)
        return True

    def remove(self, rel: str) -> None:
        path = self.root / rel
        path.unlink(missing_ok=True)
        self._dirty.add(path.parent)

    def sync(self) -> None:
        """fsync every folder that gained or lost an entry (makes the renames durable)."""
        for folder in sorted(self._dirty):
            fsync_dir(folder)
        self._dirty.clear()
