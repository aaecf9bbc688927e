"""Which folder sources changed since the daemon last looked, from the operating system's
file events (watchdog: inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
Windows), so that a tick with nothing changed does not walk and stat a whole archive.

The watcher says which folder sources saw a change and, when only files changed, in
which of their directories; the folder source still decides what changed by its own scan
of those directories (a directory created, deleted or moved: the whole source). When it cannot watch (watchdog missing, a folder that does not
exist yet, the inotify watch limit reached, the observer thread gone) it says so and
the daemon scans as before. Reads are not changes: watchdog also reports files opened
and closed without writing (the source's own reads), and those are ignored.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("feedpub.sources.watch")

# watchdog event types that are not changes to the folder's content.
_NOT_CHANGES = frozenset({"opened", "closed_no_write"})

# What changed in one source: the directories (relative, "" or "a/b/", as
# feedpub.sources.walk names them) holding a changed file, or WHOLE.
Changes = dict[str, frozenset[str] | None]
WHOLE = None  # a directory came, went or moved (or nothing is known): scan all of it


class FolderWatcher:
    """Watches each folder source's root recursively. ``take_changes()`` returns, for
    each source that saw an event since the last call (and forgets them), the
    directories its changed files are in, or WHOLE; None when the watcher is not running:
    then every source must be scanned."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self._folders = dict(folders)
        self._lock = threading.Lock()
        # source -> changed directories, or WHOLE; nothing known before the first scan
        self._changed: dict[str, set[str] | None] = dict.fromkeys(self._folders, WHOLE)
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
                    watcher._mark(self.name, _changed_dirs(root_of[self.name], event))

        root_of = {name: os.fspath(root) for name, root in self._folders.items()}
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

    def _mark(self, name: str, dirs: list[str] | None) -> None:
        with self._lock:
            if dirs is None:  # WHOLE
                self._changed[name] = WHOLE
                return
            seen = self._changed.setdefault(name, set())
            if seen is not None:
                seen.update(dirs)

    def running(self) -> bool:
        return self._observer is not None and bool(self._observer.is_alive())

    def pending(self) -> bool:
        """Whether a change arrived since the last take (without taking it)."""
        with self._lock:
            return bool(self._changed)

    def take_changes(self) -> Changes | None:
        if not self.running():
            return None
        with self._lock:
            changed, self._changed = self._changed, {}
        out: Changes = {n: None if d is None else frozenset(d) for n, d in changed.items()}
        out.update(dict.fromkeys(self._unwatched, WHOLE))
        return out

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)


def _changed_dirs(root: str, event: Any) -> list[str] | None:
    """The directories of ``root`` whose listing or files an event changed, or WHOLE.

    A file's event changes the directory holding it (both ends of a move); a directory's
    own "modified" event (an entry added or removed) changes that directory. A directory
    created, deleted or moved changes a whole subtree the recorded listing knows nothing
    of, and a path outside ``root`` is not understood: WHOLE, the source is scanned."""
    paths = [event.src_path]
    if getattr(event, "dest_path", ""):
        paths.append(event.dest_path)
    if event.is_directory and event.event_type != "modified":
        return WHOLE
    out = []
    for raw in paths:
        path = os.fsdecode(raw)
        folder = path if event.is_directory else os.path.dirname(path)
        rel = os.path.relpath(folder, root)
        if rel == os.curdir:
            out.append("")
            continue
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            return WHOLE
        out.append(rel.replace(os.sep, "/") + "/")
    return out
