"""Build the feeds: plan from the store, render what changed, write atomically.

1. O(1) check: the store generation, the generation the feeds reflect, a fingerprint of
   the feed-related config and the next scheduled publication time. Nothing new: return.
2. Affected feeds: the site, plus the beats and authors of articles changed since the
   last build, plus any feed whose article count moved (``plan.affected_feeds``).
3. Per affected feed: its archive sequence, RFC 5005 pages and the current document;
   a document is rendered only when its fingerprint differs from the stored one.
4. Files are written with :func:`feedpub.atomicfile.write_atomic` (temp, fsync, rename);
   the fingerprints and the built generation are recorded in one transaction *after*
   the files, so a crash mid-build only means the next build redoes the work.
5. WebSub pings for the current feeds that changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from feedpub.atomicfile import sweep_temp_files
from feedpub.config import Config
from feedpub.feeds import queries, websub
from feedpub.feeds.builder import GROUPS as GROUPS
from feedpub.feeds.builder import BuildReport as BuildReport
from feedpub.feeds.builder import _Builder
from feedpub.links import signup_offers
from feedpub.locks import lock_for, sqlite_path
from feedpub.store import Store

log = logging.getLogger("feedpub.feeds")

SITE_FILES = ("rss.xml", "atom.xml", "feed.json", "index.html", "feeds.opml")


def _site_files_present(config: Config) -> bool:
    """The files every build writes at the top of the output folder (a few stat calls)."""
    out = config.output_dir
    return all((out / name).is_file() for name in SITE_FILES)


def _quick_fingerprint(config: Config) -> str:
    """The config part of the O(1) check (authors are covered by the generation)."""
    raw = json.dumps(
        [
            config.site.model_dump(mode="json"),
            config.output.model_dump(mode="json"),
            [b.model_dump(mode="json") for b in config.beats],
            [a.url for a in config.authors],  # where author links point (beat urls above)
            signup_offers(config),  # index and beat/author pages link to sign-up
            str(config.output_dir),
        ],
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


# How long a build waits for another process's build (the daemon's tick, a manual
# `feedpub build`) to finish before giving up with LockedError.
BUILD_LOCK_WAIT = 600.0


# How often an incremental build walks the output folder for stale temp files.
SWEEP_EVERY = timedelta(days=1)


def _due(stamp: object, now: datetime, every: timedelta) -> bool:
    """Whether ``every`` has passed since ``stamp`` (an ISO time; missing or unreadable:
    due)."""
    if not isinstance(stamp, str):
        return True
    try:
        last = datetime.fromisoformat(stamp)
    except ValueError:
        return True
    return last.tzinfo is None or not (now - every < last <= now)


def build_feeds(
    config: Config,
    store: Store,
    *,
    now: datetime,
    force: bool = False,
    ping: bool = True,
    fence: Callable[[Connection], None] | None = None,
) -> BuildReport:
    """Bring the output folder up to date with the store. See the module docstring.

    ``fence`` (the daemon's leader lease, several instances on one store): called before
    anything is written and inside the transaction that records the build; it raises when
    this process may no longer build (``leases.NotLeader``).

    Builds of one store run one at a time (a lock beside the database): two builds
    racing could otherwise leave the older one's files under the newer one's record.
    ``ping=False`` skips the WebSub pings (tests, dry runs)."""
    lock: contextlib.AbstractContextManager[object]
    if store.is_sqlite and sqlite_path(store.url) is None:
        lock = contextlib.nullcontext()  # in-memory store: one process only
    else:
        lock = lock_for(store.url, "build", engine=store.engine, wait=BUILD_LOCK_WAIT)
    with lock:
        report = _build_feeds(config, store, now=now, force=force, ping=ping, fence=fence)
        if config.output.url is not None:  # mirror to object storage (feeds.s3)
            from feedpub.feeds import s3

            up = s3.publish(config, removed=report.removed)
            report.uploaded = len(up.uploaded) if up else 0
        return report


def _build_feeds(
    config: Config,
    store: Store,
    *,
    now: datetime,
    force: bool,
    ping: bool,
    fence: Callable[[Connection], None] | None = None,
) -> BuildReport:
    started = time.perf_counter()
    if now.tzinfo is None:
        raise ValueError("build_feeds: now must be timezone-aware")
    report = BuildReport()
    quick = _quick_fingerprint(config)
    if not force and not _site_files_present(config):
        # The output folder was wiped or replaced (a fresh deploy, a cleaned disk): the
        # stored fingerprints describe files that are gone, so write everything again.
        log.info(
            "output folder incomplete; rebuilding every feed", extra={"dir": config.output_dir}
        )
        force = True
    with store.read() as conn:
        generation, built, state = queries.read_state(conn)
        report.generation = generation
        if (
            not force
            and state is not None
            and built == generation
            and state.get("quick") == quick
            and (state.get("next_due") is None or datetime.fromisoformat(state["next_due"]) > now)
        ):
            report.skipped = True
            report.seconds = time.perf_counter() - started
            return report
    if fence is not None:
        with store.begin() as fconn:
            fence(fconn)
    # A killed writer's temp files (we hold the build lock): hidden files that nothing
    # serves or uploads, only disk litter. The whole output folder is walked for them on
    # a full build and otherwise once a day: at 100,000 articles the walk (thousands of
    # archive folders) cost more than the rest of a one-article build.
    swept_at = (state or {}).get("swept_at")
    if force or state is None or _due(swept_at, now, SWEEP_EVERY):
        if config.output_dir.is_dir():
            sweep_temp_files(config.output_dir, now=now.timestamp())
        swept_at = now.isoformat()
    began = store.began(now)  # once per store; before the read (on SQLite reads lock too)
    with store.read() as conn:
        builder = _Builder(config, store, conn, now, force, report, began)
        builder.run(state, built)
    builder.out.sync()
    if report.refused:
        builder.next_due = now  # not skipped next time: the refused articles are named again
    new_state = {
        "quick": quick,
        "config": builder.config_fp,
        "counts": builder.counts,
        "size": builder.size,
        "feeds": builder.feed_state,
        "built_at": now.isoformat(),
        "next_due": builder.next_due.isoformat() if builder.next_due else None,
        "refused": sorted(report.refused),
        "swept_at": swept_at,
    }
    with store.begin() as wconn:
        if fence is not None:
            fence(wconn)
        queries.save_files(wconn, builder.records, now)
        queries.forget_files(wconn, report.removed)
        queries.write_state(wconn, generation, new_state)
        drifted = queries.tidy_counts(
            wconn, full=builder.full, feeds=len(builder.counts), rows=builder.count_rows
        )
    if drifted:
        log.warning(
            "the store's article counts per feed differed from its articles; recounted",
            extra={"feeds": drifted[:20], "differed": len(drifted)},
        )
    if ping and config.site.websub_hub and report.changed_feeds:
        report.ping = websub.ping(config.site.websub_hub, report.changed_feeds)
    report.seconds = time.perf_counter() - started
    log.info("feeds built", extra={**report.summary(), "changed_feeds": len(report.changed_feeds)})
    return report
