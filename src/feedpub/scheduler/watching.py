"""Which folder sources a daemon tick may leave out of the collect: those the watcher
saw no change in since their last clean scan (docs/performance.md "The daemon").

A source is scanned anyway when the watcher is not running, when its last scan failed
or rejected a file (so the rejection is named again each tick, as before), and at least
every ``[schedule] rescan_every`` (file events do not cross network file systems, and a
missed event must not hide a change for long).

When only files changed in a source since its last clean scan, only the directories
holding them are listed: the others are taken as that scan's listing fingerprint records
them (a :class:`FolderHint`, as ``feedpub publish``'s quiet record gives). A directory
created, deleted or moved, or no fingerprint kept, and the whole source is scanned.
"""

from __future__ import annotations

from datetime import datetime

from feedpub.collect import CollectReport
from feedpub.config import Config, FolderSourceConfig, source_name
from feedpub.sources.walk import Fingerprint, FolderHint, files_in
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
        self._scanned: dict[str, datetime] = {}  # source -> its last clean full scan
        self._listing: dict[str, Fingerprint] = {}  # source -> as its last clean scan saw it
        self._skipped: frozenset[str] = frozenset()
        self._hints: dict[str, FolderHint] = {}
        self._in_flight: set[str] = set()  # hinted this tick, until collected() says how
        self.last_run_id: int | None = None  # the runs row of the last collect seen here

    @property
    def watcher(self) -> FolderWatcher:
        assert self._watcher is not None, "no folder source to watch, or watch_folders = false"
        return self._watcher

    def start(self) -> bool:
        return self._watcher is not None and self._watcher.start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()

    def skip(self, now: datetime, *, sole_collector: bool = False) -> frozenset[str]:
        """The folder sources this tick's collect may leave out (and, for :meth:`hints`,
        where the others changed). ``sole_collector``: no collect but this daemon's ran
        since :attr:`last_run_id`, so the store holds what its clean scans left (no live
        article without its file) and a hint may say so."""
        for name in self._in_flight:  # its collect failed: the events it took are gone
            self._scanned.pop(name, None)
            self._listing.pop(name, None)
        self._in_flight = set()
        changes = self._watcher.take_changes() if self._watcher is not None else None
        self._hints = {}
        if changes is None:
            self._skipped = frozenset()
            return self._skipped
        fresh = {
            name
            for name, at in self._scanned.items()
            if now - at < self._every and at <= now  # a clock set back: scan
        }
        for name, dirs in changes.items():
            listing = self._listing.get(name)
            if dirs is not None and name in fresh and listing is not None:
                unchanged = {d: v for d, v in listing.items() if d not in dirs}
                self._hints[name] = FolderHint(
                    unchanged,
                    frozenset(listing),
                    no_orphans=sole_collector,
                    listed_files=files_in(listing),
                )
                self._in_flight.add(name)
            else:
                self._scanned.pop(name, None)
                fresh.discard(name)
        self._skipped = frozenset(fresh - set(changes))
        return self._skipped

    def hints(self) -> dict[str, FolderHint]:
        """For this tick's collect: the sources where only some directories changed."""
        return dict(self._hints)

    def collected(self, report: CollectReport, now: datetime) -> None:
        """Remember which sources this tick scanned cleanly, and what they hold."""
        self._in_flight = set()
        self.last_run_id = report.run_id
        for r in report.sources:
            if r.name not in self._folders or r.name in self._skipped:
                continue
            if r.status in _CLEAN and not r.counts.get("rejected"):
                if r.name not in self._hints:  # a full scan: rescan_every counts from here
                    self._scanned[r.name] = now
                if r.listing_fingerprint:
                    self._listing[r.name] = dict(r.listing_fingerprint)
                else:  # some of it could not be listed: the next change scans it all
                    self._listing.pop(r.name, None)
            else:
                self._scanned.pop(r.name, None)
                self._listing.pop(r.name, None)
