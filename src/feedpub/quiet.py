"""Proving that ``feedpub publish`` has nothing to do, before loading what doing it needs.

A publish with nothing new used to cost a second and more at 100,000 articles, most of it
before any work: importing the configuration models and the database layer, loading
every file's recorded stats, then finding all of them unchanged. Run from cron every few
minutes, that is the common case. After a publish that went cleanly (every source a
content folder, all of it read, the feeds built, nothing refused, and nothing rejected
but files the parser refuses, which every later run would read and refuse again), the
store keeps a *quiet record* (meta key ``publish.quiet``):

- the configuration it ran with (a hash of the file's bytes and resolved path, and of
  the feedpub version),
- the store's generation, and a hash of the build's record (``feeds.state``),
- each folder's fingerprint (``feedpub.sources.walk``: file count, sums of sizes and
  mtimes, directory mtimes) and where the feeds were written,
- the rejected files with their reasons (named again, exit status 1, by a quiet run).

The next ``publish`` reads the configuration file (tomllib) and the store (sqlite3, or
psycopg for PostgreSQL: feedpub.quiet_db) directly and walks each folder with
``walk.fingerprint``. When everything matches, and no scheduled article or feed entry
has come due (the build's ``next_due``), and the top-level feed files are still there,
the full collect and build would change nothing: the run is recorded as they would
record it (``runs``) and reported the same way. Any difference, or anything it cannot
read, and the full publish runs: this module only ever answers "certainly nothing to do"
or "don't know".

SQLite and PostgreSQL stores (URLs without options; see docs/performance.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedpub import __version__
from feedpub.quiet_db import QuietStore, Target, target_of
from feedpub.sources.walk import FolderHint, dirs_moved, files_in, fingerprint

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from feedpub.collect_report import CollectReport
    from feedpub.config import Config
    from feedpub.store import Store

QUIET_KEY = "publish.quiet"
# Keys the store keeps in ``meta`` (feedpub.store, feedpub.feeds.queries; a test checks
# they are the same).
GENERATION_KEY = "generation"
SCHEMA_KEY = "schema_version"
FEEDS_GENERATION_KEY = "feeds.generation"
FEEDS_STATE_KEY = "feeds.state"
DEFAULT_STORE_URL = "sqlite:///feedpub.db"  # config.StoreConfig.url
SITE_FILES = ("rss.xml", "atom.xml", "feed.json", "index.html", "feeds.opml")  # feeds.build


@dataclass(frozen=True)
class Probe:
    """What the check read: enough to write the next quiet record after a full run."""

    key: str  # configuration + feedpub version
    target: Target  # the store, as the quiet check opens it (quiet_db)


@dataclass(frozen=True)
class Hints:
    """The quiet record still describes the store but some folders changed: by folder
    source, the folders whose fingerprint it matches (the collect takes their files as
    recorded instead of walking them again) and every folder found."""

    folders: dict[str, FolderHint]


@dataclass(frozen=True)
class QuietRun:
    """A publish proven to have nothing to do, already recorded in ``runs``."""

    generation: int
    sources: list[tuple[str, int]]  # (source name, content files in its folder)
    # The files rejected again as they were at the last publish: (source name, file,
    # reason, line), in the order that publish named them.
    rejected: tuple[tuple[str, str, str, int | None], ...] = ()


def probe(config_path: Path) -> Probe | None:
    """The configuration's key and the store it names; None when the file cannot be read,
    is not TOML, or names a store the check does not open itself (quiet_db.target_of;
    the full path reports what is wrong, if anything)."""
    try:
        raw = config_path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
        root = config_path.parent.resolve()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RuntimeError):
        return None
    store = data.get("store", {})
    url = store.get("url", DEFAULT_STORE_URL) if isinstance(store, dict) else None
    target = target_of(url, root) if isinstance(url, str) else None
    if target is None:
        return None
    return Probe(_config_key(raw, config_path), target)


def _config_key(raw: bytes, config_path: Path) -> str:
    h = hashlib.sha256()
    schema = Path(__file__).with_name("schema.py")
    try:
        st = schema.stat()
        code = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        code = "?"
    for part in (__version__, code, str(config_path.resolve())):
        h.update(part.encode() + b"\0")
    h.update(raw)
    return h.hexdigest()


def check(
    probe: Probe,
    now: datetime,
    clock: Callable[[], datetime],
    *,
    processes: int = 1,
    prepare: Callable[[], object] | None = None,
) -> QuietRun | Hints | None:
    """Record and return the quiet run when the store's quiet record still holds at
    ``now`` (``clock`` tells when the run finished, as the full path's running clock
    does). Otherwise run the full publish, with the Hints when the record still
    describes the store (only some folders changed), or None. ``processes``: how many
    may stat a large folder's files (sources.walk.fingerprint). ``prepare``: what the
    full path will need first (its imports), run while forked children walk a folder
    once a directory's mtime already says that something changed (a file added,
    removed or renamed), so the two overlap; at most once."""
    db = QuietStore.open(probe.target)
    if db is None:
        return None
    errors: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, AttributeError)
    try:
        return _check(db, probe, now, clock, processes, _once(prepare))
    except errors + db.errors:
        return None
    finally:
        db.close()


def _check(
    db: QuietStore,
    probe: Probe,
    now: datetime,
    clock: Callable[[], datetime],
    processes: int,
    prepare: Callable[[], object] | None = None,
) -> QuietRun | Hints | None:
    meta = db.meta((QUIET_KEY, GENERATION_KEY, SCHEMA_KEY, FEEDS_GENERATION_KEY, FEEDS_STATE_KEY))
    raw = meta.get(QUIET_KEY)
    if raw is None:
        return None  # none kept, or a collect ran since (each collect drops it)
    rec = json.loads(raw)
    generation = int(meta[GENERATION_KEY])
    if (
        rec["key"] != probe.key
        or rec["schema"] != meta.get(SCHEMA_KEY)
        or rec["generation"] != generation
    ):
        return None
    # The record describes the store (no collect ran since it was kept): what changed in
    # the folders is what differs from it.
    sources: list[tuple[str, int]] = []
    folders: dict[str, FolderHint] = {}
    changed = False
    for name, root, recorded in rec["sources"]:
        meanwhile = prepare if prepare is not None and dirs_moved(root, recorded) else None
        current = fingerprint(root, processes, expected=files_in(recorded), meanwhile=meanwhile)
        if current is None:
            return None
        same = {d: v for d, v in recorded.items() if current.get(d) == v}
        # No live article without its file, unless the parser rejected one: a published
        # file turned unreadable keeps its article and has no recorded stats.
        clean = not any(src == name for src, *_ in rec.get("rejected", []))
        folders[name] = FolderHint(
            same,
            frozenset(current),
            no_orphans=clean,
            listed_files=files_in(recorded),
        )
        sources.append((name, files_in(current)))
        changed |= current != recorded
    hints = Hints(folders)
    if changed:
        return hints
    state_raw = meta.get(FEEDS_STATE_KEY, "")
    if meta.get(FEEDS_GENERATION_KEY) != str(generation) or rec["state"] != _sha(state_raw):
        return hints  # built since by hand, or not built: the build decides
    state = json.loads(state_raw)
    if state.get("refused"):
        return hints  # refused articles are named at every build
    next_due = state.get("next_due")
    if next_due is not None and datetime.fromisoformat(next_due) <= now:
        return hints  # a scheduled article or entry comes due: the full path publishes it
    out = Path(rec["output"])
    if not all((out / name).is_file() for name in SITE_FILES):
        return hints  # the output folder was cleaned: the build writes it again
    rejected = tuple(
        (str(n), str(k), str(r), None if ln is None else int(ln))
        for n, k, r, ln in rec.get("rejected", [])
    )
    run = QuietRun(generation, sources, rejected)
    _record_runs(db, run, now, clock())
    return run


def _once(f: Callable[[], object] | None) -> Callable[[], object] | None:
    """``f``, run by its first call only; what it raises is dropped (the full path does
    the same work again and reports a failure there)."""
    if f is None:
        return None
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            with contextlib.suppress(Exception):
                f()

    return run


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def collect_report(run: QuietRun, now: datetime) -> CollectReport:
    """The report the full collect makes of a run with nothing new: every file unchanged
    but those rejected again (a rejected file's stats are not recorded: it is read, and
    rejected, at every run until it is mended)."""
    from feedpub.collect_report import KINDS, CollectReport, SourceReport
    from feedpub.errors import ContentError

    report = CollectReport(now=now, generation=run.generation)
    for name, files in run.sources:
        counts = dict.fromkeys(KINDS, 0)
        counts["rejected"] = sum(1 for src, *_ in run.rejected if src == name)
        counts["unchanged"] = files - counts["rejected"]
        report.sources.append(SourceReport(name, "ok", None, counts, []))
        for kind in ("unchanged", "rejected"):
            report.counts[kind] += counts[kind]
    report.rejected = [
        ContentError(key, reason, line=line) for _, key, reason, line in run.rejected
    ]
    return report


def _collect_summary(run: QuietRun, now: datetime) -> dict[str, object]:
    return collect_report(run, now).summary()


def build_summary(run: QuietRun) -> dict[str, Any]:
    """What the full build records when it has nothing to do (BuildReport.summary)."""
    return {
        "written": 0,
        "unchanged": 0,
        "removed": 0,
        "generation": run.generation,
        "skipped": True,
        "items_written": 0,
        "changed_feeds": [],
        "refused": {},
    }


def _record_runs(db: QuietStore, run: QuietRun, now: datetime, finished: datetime) -> None:
    """The collect and the build, as Store.record_run writes them."""
    db.insert_runs(
        [
            ("collect", now, finished, not run.rejected, json.dumps(_collect_summary(run, now))),
            ("build", now, finished, True, json.dumps(build_summary(run))),
        ]
    )


def remember(
    probe: Probe | None,
    config_path: Path,
    config: Config,
    store: Store,
    report: CollectReport,
    *,
    refused: bool,
    logging_quiet: bool,
) -> bool:
    """After a full publish: keep the quiet record when the run was clean (see the
    module docstring), else drop the old one. Returns whether a record was kept."""
    from feedpub.config import FolderSourceConfig, source_name
    from feedpub.store import get_meta, set_meta

    reports = {r.name: r for r in report.sources}
    folders: list[tuple[str, str, dict[str, str] | None]] = []
    for c in config.sources:
        r = reports.get(source_name(c))
        if not isinstance(c, FolderSourceConfig) or r is None or r.status != "ok":
            break
        folders.append((r.name, str(config.resolve(c.path)), r.listing_fingerprint))
    rejected = _repeatable(report)
    clean = (
        probe is not None
        and logging_quiet
        and not refused
        and rejected is not None
        and not report.source_errors
        and config.output.url is None
        and len(folders) == len(config.sources) == len(report.sources)
        and all(fp is not None for _, _, fp in folders)
        and _same_file(probe, config_path)
    )
    with store.begin() as conn:
        generation = int(get_meta(conn, GENERATION_KEY) or 0)
        built = get_meta(conn, FEEDS_GENERATION_KEY)
        state = get_meta(conn, FEEDS_STATE_KEY)
        if not clean or generation != report.generation or built != str(generation) or not state:
            forget(conn)
            return False
        assert probe is not None and rejected is not None
        if rejected and _stats_recorded(conn, [(n, k) for n, k, _, _ in rejected]):
            forget(conn)  # rejected by the plan (same URL as another...), not by the parser
            return False
        record = {
            "key": probe.key,
            "schema": get_meta(conn, SCHEMA_KEY),
            "generation": generation,
            "state": _sha(state),
            "output": str(config.output_dir),
            "sources": [list(f) for f in folders],
            "rejected": [list(r) for r in rejected],
        }
        set_meta(conn, QUIET_KEY, json.dumps(record, sort_keys=True))
    return True


# Rejections that depend on more than the file's bytes (its permissions, the memory free):
# mended without a change the fingerprint sees (chmod changes no mtime).
_TRANSIENT = ("cannot read file:", "too big to read in memory")


def _repeatable(report: CollectReport) -> list[tuple[str, str, str, int | None]] | None:
    """The run's rejections as (source, file, reason, line), when the same unchanged
    files would be rejected the same way by every later run: files of folder sources
    that the parser refused (checked against the store by the caller), and no pasted
    ``.txt`` file (its dates are read relative to the run's time). None otherwise."""
    by_source = [(r.name, r.counts.get("rejected", 0)) for r in report.sources]
    if sum(n for _, n in by_source) != len(report.rejected):
        return None
    out: list[tuple[str, str, str, int | None]] = []
    errors = iter(report.rejected)
    names = [name for name, n in by_source for _ in range(n)]
    for name, e in zip(names, errors, strict=True):
        if e.source.lower().endswith(".txt") or e.reason.startswith(_TRANSIENT):
            return None
        out.append((name, e.source, e.reason, e.line))
    return out


def _stats_recorded(conn: Connection, files: list[tuple[str, str]]) -> bool:
    """Whether the store recorded the stats of any of these (source, file): such a file
    is skipped as unchanged next time, not rejected again."""
    import sqlalchemy as sa

    from feedpub import schema as s

    f = s.source_files
    for name, key in files:
        if conn.execute(
            sa.select(f.c.path).where(f.c.source == name, f.c.path == key).limit(1)
        ).first():
            return True
    return False


def _same_file(probe: Probe, config_path: Path) -> bool:
    """The configuration file still holds what the probe read before the run loaded it
    (edited during the run: no record; the next run takes the full path)."""
    try:
        return _config_key(config_path.read_bytes(), config_path) == probe.key
    except OSError:
        return False


def forget(conn: Connection) -> None:
    """Drop the quiet record (any full run that is not clean)."""
    import sqlalchemy as sa

    from feedpub import schema as s

    conn.execute(sa.delete(s.meta).where(s.meta.c.key == QUIET_KEY))
