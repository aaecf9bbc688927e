"""Which folder sources changed since the daemon last looked, from the operating system's
file events (watchdog: inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
Windows), so that a tick with nothing changed does not walk and stat a whole archive.

The watcher only says "this folder saw a change"; the folder source still decides what
changed by its own scan. When it cannot watch (watchdog missing, a folder that does not
exist yet, the inotify watch limit reached, the observer thread gone) it says so and
the daemon scans as before. Reads are not changes: watchdog also reports files opened
and closed without writing (the source's own reads), and those are ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("feedpub.sources.watch")

# watchdog event types that are not changes to the folder's content.
_NOT_CHANGES = frozenset({"opened", "closed_no_write"})


class FolderWatcher:
    """Watches each folder source's root recursively. ``take_changed()`` returns the
    names of the sources that saw an event since the last call (and forgets them), or
    None when the watcher is not running: then every source must be scanned."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self._folders = dict(folders)
        self._lock = threading.Lock()
        self._changed: set[str] = set(self._folders)  # nothing known before the first scan
        self._unwatched: set[str] = set(self._folders)
        self._observer: Any = None

    @property
    def unwatched(self) -> frozenset[str]:
        """Sources this watcher cannot see (always scanned)."""
        return frozenset(self._unwatched)

    def start(self) -> bool:
        """Start watching; False (and logged why) when no folder can be watched."""
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as e:  # pragma: no cover - a declared dependency
            log.warning("folders not watched: watchdog unavailable", extra={"error": str(e)})
            return False
        watcher = self

        class _Mark(FileSystemEventHandler):
            def __init__(self, name: str) -> None:
                self.name = name

            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type not in _NOT_CHANGES:
                    watcher._mark(self.name)

        observer = Observer()
        for name, root in self._folders.items():
            try:
                if not root.is_dir():
                    raise FileNotFoundError(f"no folder {root}")
                observer.schedule(_Mark(name), str(root), recursive=True)
            except OSError as e:  # missing folder, inotify limit: scan this one each tick
                log.warning(
                    "folder not watched; scanned every tick",
                    extra={"source": name, "path": str(root), "error": str(e)},
                )
                continue
            self._unwatched.discard(name)
        if len(self._unwatched) == len(self._folders):
            return False
        observer.daemon = True
        try:
            observer.start()
        except OSError as e:  # e.g. the inotify watch limit, hit while adding subfolders
            log.warning("folders not watched", extra={"error": str(e)})
            self._unwatched = set(self._folders)
            return False
        self._observer = observer
        return True

    def _mark(self, name: str) -> None:
        with self._lock:
            self._changed.add(name)

    def running(self) -> bool:
        return self._observer is not None and bool(self._observer.is_alive())

    def pending(self) -> bool:
        """Whether a change arrived since the last take (without taking it)."""
        with self._lock:
            return bool(self._changed)

    def take_changed(self) -> set[str] | None:
        if not self.running():
            return None
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed | self._unwatched

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
