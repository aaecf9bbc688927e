"""Which folder sources a daemon tick may leave out of the collect: those the watcher
saw no change in since their last clean scan (docs/performance.md "The daemon").

A source is scanned anyway when the watcher is not running, when its last scan failed
or rejected a file (so the rejection is named again each tick, as before), and at least
every ``[schedule] rescan_every`` (file events do not cross network file systems, and a
missed event must not hide a change for long).
"""

from __future__ import annotations

from datetime import datetime

from feedpub.collect import CollectReport
from feedpub.config import Config, FolderSourceConfig, source_name
from feedpub.sources.watch import FolderWatcher

_CLEAN = ("ok", "not-modified")


class WatchedFolders:
    def __init__(self, config: Config) -> None:
        self._every = config.schedule.rescan_every
        self._folders = {
            source_name(c): config.resolve(c.path)
            for c in config.sources
            if isinstance(c, FolderSourceConfig)
        }
        self._watcher: FolderWatcher | None = None
        if config.schedule.watch_folders and self._folders:
            self._watcher = FolderWatcher(self._folders)
        self._scanned: dict[str, datetime] = {}  # source -> its last clean scan
        self._skipped: frozenset[str] = frozenset()

    @property
    def watcher(self) -> FolderWatcher:
        assert self._watcher is not None, "no folder source to watch, or watch_folders = false"
        return self._watcher

    def start(self) -> bool:
        return self._watcher is not None and self._watcher.start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()

    def skip(self, now: datetime) -> frozenset[str]:
        """The folder sources this tick's collect may leave out."""
        changed = self._watcher.take_changed() if self._watcher is not None else None
        if changed is None:
            self._skipped = frozenset()
            return self._skipped
        for name in changed:
            self._scanned.pop(name, None)
        self._skipped = frozenset(
            name
            for name, at in self._scanned.items()
            if now - at < self._every and at <= now  # a clock set back: scan
        )
        return self._skipped

    def collected(self, report: CollectReport, now: datetime) -> None:
        """Remember which sources this tick scanned cleanly."""
        for r in report.sources:
            if r.name not in self._folders or r.name in self._skipped:
                continue
            if r.status in _CLEAN and not r.counts.get("rejected"):
                self._scanned[r.name] = now
            else:
                self._scanned.pop(r.name, None)
