"""collect: read every source, decide what changed, write the store in one transaction.

Sources are fetched concurrently (bounded pool); each source only parses. Decisions
are pure (``feedpub.decide``); this module does the I/O around them. Every content
change bumps the store's generation in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.clock import running_from
from feedpub.collect_report import KINDS as KINDS
from feedpub.collect_report import CollectReport as CollectReport
from feedpub.collect_report import SourceReport as SourceReport
from feedpub.collect_scope import resolve, scoped, widen
from feedpub.collect_stream import (
    STREAM_MIN,
    WRITTEN,
    Stream,
    refresh_statistics,
    run_stream,
    states_for,
)
from feedpub.config import (
    Config,
    FeedSourceConfig,
    FolderSourceConfig,
    PagesSourceConfig,
    source_name,
)
from feedpub.decide import BeatRules, Plan, author_slug, index_by_url, plan_source
from feedpub.errors import is_rust_panic
from feedpub.quiet import QUIET_KEY
from feedpub.quiet import forget as forget_quiet_record
from feedpub.sources.base import Source, SourceContext, SourceResult
from feedpub.sources.boundary import screen_result
from feedpub.sources.folder import FolderSource
from feedpub.sources.walk import FolderHint
from feedpub.store import Store, get_meta
from feedpub.store_bulk import ArticleWrite, set_statuses, write_articles
from feedpub.store_files import load_stats, save_file_stats
from feedpub.text import slugify
from feedpub.types import ArticleStatus

log = logging.getLogger("feedpub.collect")

WATCHED = "watched: no change"  # a source the daemon's watcher saw unchanged, not read
MAX_CONCURRENT_SOURCES = 8
# Rejected files named in the orphan query (_may_retract); past this many, any article
# without recorded stats means reading every stored article, as before.
MAX_PRESENT_REJECTED = 500


def make_source(cfg: FolderSourceConfig | FeedSourceConfig | PagesSourceConfig) -> Source:
    name = source_name(cfg)
    if isinstance(cfg, FolderSourceConfig):
        from feedpub.sources.folder import FolderSource

        return FolderSource(cfg, name)
    if isinstance(cfg, FeedSourceConfig):
        from feedpub.sources.feed import FeedSource

        return FeedSource(cfg, name)
    from feedpub.sources.pages import PagesSource

    return PagesSource(cfg, name)


def rules_fingerprint(config: Config) -> str:
    """Configuration that shapes parsed articles; a change forces a full re-parse."""
    shape = {
        "site": config.site.model_dump(mode="json"),
        "beats": [b.model_dump(mode="json") for b in config.beats],
        "authors": [a.model_dump(mode="json") for a in config.authors],
        "sources": [x.model_dump(mode="json") for x in config.sources],
        "version": 1,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def collect(
    config: Config,
    store: Store,
    *,
    now: datetime,
    skip: Collection[str] = (),
    hints: Mapping[str, FolderHint] | None = None,
) -> CollectReport:
    """Read every source into the store as of ``now`` (the run is recorded as ending
    ``now`` plus the time it took). ``skip``: names of sources known to be unchanged
    (the daemon's watched folders); they are reported as such and not read.
    ``hints``: by folder source, the folders known unchanged since the store's file stats
    were recorded (``feedpub publish``'s quiet record, feedpub.quiet.Hints; the daemon's
    file events, feedpub.scheduler.watching): those folders are not walked again. Only
    this run's caller may pass them: a quiet record holds only until the next collect
    (which drops it), file events only since the scan they follow."""
    clock = running_from(now)
    report = CollectReport(now=now)
    sources = [make_source(c) for c in config.sources if source_name(c) not in skip]
    report.sources.extend(
        SourceReport(name, WATCHED, None, dict.fromkeys(KINDS, 0), [])
        for name in (source_name(c) for c in config.sources)
        if name in skip
    )
    fingerprint = rules_fingerprint(config)

    with store.read() as conn:
        contexts = [
            _context(
                conn,
                config,
                src.name,
                now,
                fingerprint,
                keys=not isinstance(src, FolderSource),
                hint=(hints or {}).get(src.name),
            )
            for src in sources
        ]
        quiet_record = get_meta(conn, QUIET_KEY) is not None
    if quiet_record:  # it holds until the next collect: `feedpub publish` writes it again
        with store.begin() as conn:
            forget_quiet_record(conn)

    streams: dict[str, Stream] = {}

    def run(pair: tuple[Source, SourceContext]) -> SourceResult:
        src, ctx = pair
        try:
            if not isinstance(src, FolderSource):
                result = src.fetch(ctx)
                screen_result(result, config.site.base_url)  # the one boundary (docs/content.md)
                return result
            # A folder's files pass the same boundary one by one inside parse_file.
            listing = src.scan(ctx)
            if len(listing.jobs) >= STREAM_MIN:
                streams[src.name] = Stream(src, ctx, listing)  # parsed in batches below
            else:
                src.parse(listing.result, listing.jobs, listing, ctx)
            return listing.result
        except BaseException as e:  # a source bug (or a Rust panic) must not stop the others
            if not isinstance(e, Exception) and not is_rust_panic(e):
                raise  # KeyboardInterrupt, SystemExit
            log.exception("source failed", extra={"source": src.name})
            return SourceResult(name=src.name, status="error", error=f"{type(e).__name__}: {e}")

    pairs = list(zip(sources, contexts, strict=True))
    if len(pairs) <= 1:
        results = [run(p) for p in pairs]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_SOURCES, len(pairs))) as pool:
            results = list(pool.map(run, pairs))
    bios = [(a, beat) for r in results for p in r.articles for a, _bio, beat in p.author_bios]
    if any(st.ctx.scope is not None for st in streams.values()):
        with store.read() as conn:  # batches decide against the whole listing
            for st in streams.values():
                widen(conn, st.listing.result, st.ctx)
    skipped = {name: len(st.listing.result.unchanged_keys) for name, st in streams.items()}
    changed = _stream(config, store, list(streams.values()), bios, now) if streams else False
    if streams:  # the checks below plan on the new rows
        refresh_statistics(
            store, sum(st.counts.get(k, 0) for st in streams.values() for k in WRITTEN)
        )

    with store.begin() as conn:
        changed |= store.sync_beats(conn, [(b.slug, b.title, b.description) for b in config.beats])
        configured_slugs = _sync_config_authors(store, conn, config)
        configured_bios = {configured_slugs[a.name.casefold()] for a in config.authors if a.bio}
        needs = [
            _states_needed(conn, r, ctx, isinstance(src, FolderSource))
            for r, ctx, src in zip(results, contexts, sources, strict=True)
        ]
        if "all" in needs:
            for r, ctx in zip(results, contexts, strict=True):
                widen(conn, r, ctx)  # every stored article is compared with the listing
            stored = store.article_states(conn)
        else:  # only what the new and changed files may touch
            some = {
                st.id: st
                for r, need in zip(results, needs, strict=True)
                if need == "some"
                for st in states_for(store, conn, r, config)
            }
            stored = list(some.values())
            for r, ctx in zip(results, contexts, strict=True):
                resolve(conn, r, ctx, stored)
        by_url = index_by_url(stored)
        by_id = {st.id: st for st in stored}
        rules = BeatRules.from_config(config, store.author_beats(conn)).with_bios(bios)
        generation = store.generation(conn) + 1  # used only if something changes
        wrote = False
        written = 0  # rows this transaction writes (the streamed batches wrote theirs)
        plans = [
            plan_source(
                result,
                stored=stored,
                by_url=by_url,
                by_id=by_id,
                rules=rules,
                author_slugs=configured_slugs,
                now=now,
                tz=config.site.tz,
            )
            for result in results
        ]
        _keep_moved_articles(plans)
        for result, ctx, plan in zip(results, contexts, plans, strict=True):
            _save_authors(store, conn, result, configured_slugs, configured_bios)
            wrote |= _apply(conn, plan, result, ctx, generation, now)
            _save_source_state(conn, result, ctx)
            source_report = _source_report(result, plan)
            written += sum(source_report.counts[k] for k in WRITTEN)
            if result.name in streams:  # the batches' counts; this plan only retracts
                st = streams[result.name]
                counts = source_report.counts
                for kind, n in st.counts.items():
                    counts[kind] += n
                counts["unchanged"] = st.counts.get("unchanged", 0) + skipped[result.name]
                counts["rejected"] += len(st.rejected)
                source_report.warnings[:0] = st.warnings
                report.rejected.extend(st.rejected)
                report.warnings.extend(st.warnings)
            report.sources.append(source_report)
            report.rejected.extend(plan.rejected)
            report.warnings.extend(result.warnings)
            for kind in KINDS:
                report.counts[kind] += source_report.counts[kind]
        wrote |= _publish_due(conn, now, generation)
        if wrote or changed:
            report.generation = store.bump_generation(conn)
            report.changed = True
        else:
            report.generation = generation - 1
    if report.changed:
        refresh_statistics(store, written)
    log.info(
        "collected",
        extra={**report.counts, "generation": report.generation, "warnings": len(report.warnings)},
    )
    report.run_id = store.record_run(
        "collect",
        now,
        clock(),
        not report.rejected and not report.source_errors,
        report.summary(),
    )
    return report


def _stream(
    config: Config,
    store: Store,
    streams: list[Stream],
    bios: list[tuple[str, str | None]],
    now: datetime,
) -> bool:
    """Collect the large folder batches in batches (collect_stream). ``bios`` gets the bio
    lines of their .txt files too. Returns whether the beats changed."""
    with store.begin() as conn:  # beats and configured authors first: articles refer to them
        changed = store.sync_beats(conn, [(b.slug, b.title, b.description) for b in config.beats])
        slugs = _sync_config_authors(store, conn, config)
        if changed:
            store.bump_generation(conn)
    configured_bios = {slugs[a.name.casefold()] for a in config.authors if a.bio}
    for st in streams:
        bios.extend(st.bios())
    for st in streams:
        seen: set[str] = set()

        def write(
            conn: Connection,
            batch: SourceResult,
            plan: Plan,
            generation: int,
            seen: set[str] = seen,
        ) -> bool:
            _save_authors(store, conn, batch, slugs, configured_bios, seen)
            return _apply(conn, plan, batch, None, generation, now)

        run_stream(
            st,
            store,
            config,
            now=now,
            rules_for=lambda conn: BeatRules.from_config(
                config, store.author_beats(conn)
            ).with_bios(bios),
            author_slugs=slugs,
            write=write,
        )
    return changed or any(st.wrote for st in streams)


def _keep_moved_articles(plans: list[Plan]) -> None:
    """A file moved from one source to another is claimed by the second source (matched
    by URL) while the first one no longer lists it: that article is moved, not retracted,
    whichever source is planned first."""
    claimed = {ch.article_id for p in plans for ch in p.changes if ch.article is not None}
    for p in plans:
        p.changes = [
            ch for ch in p.changes if not (ch.kind == "retracted" and ch.article_id in claimed)
        ]


def _states_needed(conn: Connection, result: SourceResult, ctx: SourceContext, folder: bool) -> str:
    """Which stored articles deciding this result needs: "all" (something may be
    retracted, or an upstream source's entries to identify), "some" (a folder's new and
    changed files: the stored articles with their keys, URLs or ids) or "none" (a tick
    with nothing new reads none)."""
    if not folder:
        if result.articles or result.drafts:
            return "all"
        live = result.complete and ctx.live_keys - result.unchanged_keys
        return "all" if live else "none"
    if result.complete and _may_retract(conn, result, ctx):
        return "all"
    return "some" if result.articles or result.drafts else "none"


def _may_retract(conn: Connection, result: SourceResult, ctx: SourceContext) -> bool:
    """A folder's complete listing may retract something unless every file recorded last
    time is listed again and every live article has a recorded file (one query: the keys
    of a large archive are never loaded)."""
    rejected = {e.source for e in result.rejected}
    if any(k not in result.file_stats and k not in rejected for k in ctx.file_stats):
        return True
    if ctx.hint is not None and ctx.hint.no_orphans:
        # The quiet record holds: the last collect was a clean publish, which left no
        # live article without its file, and no collect ran since.
        return False
    a, f = s.articles, s.source_files
    q = (
        sa.select(a.c.id)
        .where(
            a.c.source == result.name,
            a.c.status != ArticleStatus.RETRACTED.value,
            ~sa.exists().where(f.c.source == result.name, f.c.path == a.c.source_key),
        )
        .limit(1)
    )
    if 0 < len(rejected) <= MAX_PRESENT_REJECTED:
        # A file rejected again is there: its article (the last good version) has no
        # recorded stats but is not an orphan.
        q = q.where(a.c.source_key.not_in(sorted(rejected)))
    return conn.execute(q).first() is not None


def _context(
    conn: Connection,
    config: Config,
    name: str,
    now: datetime,
    fp: str,
    *,
    keys: bool = True,
    hint: FolderHint | None = None,
) -> SourceContext:
    """What a source needs to know before it reads; ``keys``: the keys and content hashes
    of its stored articles (a folder source does not use them: its files' stats say what
    changed, and a large archive's keys are not loaded on every tick)."""
    state = {
        r.key: r.value
        for r in conn.execute(sa.select(s.source_state).where(s.source_state.c.source == name))
    }
    known: dict[str, str] = {}
    live: set[str] = set()
    a = s.articles
    if keys:
        q = sa.select(a.c.source_key, a.c.content_hash, a.c.status).where(a.c.source == name)
        for r in conn.execute(q):
            known[r.source_key] = r.content_hash
            if r.status != ArticleStatus.RETRACTED.value:
                live.add(r.source_key)
    scope = None
    if hint is not None and not keys and state.get("rules_fingerprint") == fp:
        scope = scoped(conn, name, hint)  # only the changed folders' stats
    stats = scope.stats if scope is not None else load_stats(conn, name)
    return SourceContext(config, now, state, known, stats, fp, live, hint, scope)


def _sync_config_authors(store: Store, conn: Connection, config: Config) -> dict[str, str]:
    """Write [[authors]] to the store; returns name (casefolded) -> slug for configured ones."""
    slugs: dict[str, str] = {}
    for a in config.authors:
        slug = a.slug or slugify(a.name)
        slugs[a.name.casefold()] = slug
        store.upsert_author(conn, slug, a.name, bio=a.bio or None, email=a.email, uri=a.uri)
    return slugs


def _save_authors(
    store: Store,
    conn: Connection,
    result: SourceResult,
    slugs: dict[str, str],
    configured_bios: set[str],
    seen: set[str] | None = None,
) -> None:
    """Authors of this result; a bio line seen in an article never overrides the bio
    written in config.toml (the order files are read in must not decide). ``seen``: the
    author slugs already written by this run's earlier batches."""
    seen = set() if seen is None else seen
    for p in result.articles:
        bios = {name: (bio, beat) for name, bio, beat in p.author_bios}
        for name in p.authors:
            slug = author_slug(name, slugs)
            if slug in seen and name not in bios:
                continue
            seen.add(slug)
            bio, beat = bios.get(name, (None, None))
            if slug in configured_bios:
                bio = None
            store.upsert_author(conn, slug, name, bio=bio, beat=beat)


def _apply(
    conn: Connection,
    plan: Plan,
    result: SourceResult,
    ctx: SourceContext | None,
    generation: int,
    now: datetime,
) -> bool:
    writes = [
        ArticleWrite(ch.article, result.name, ch.source_key, ch.content_hash, ch.insert)
        for ch in plan.changes
        if ch.article is not None
    ]
    write_articles(conn, writes, first_seen=now, generation=generation)
    set_statuses(
        conn,
        [(ch.article_id, ch.status) for ch in plan.changes if ch.article is None and ch.status],
        generation,
    )
    # Remember (size, mtime) of the files read or skipped, so the next collect skips the
    # unchanged ones. Compared again inside the write transaction: a concurrent collect
    # may have changed the rows since the source looked.
    if result.file_stats or result.complete:
        save_file_stats(
            conn,
            result.name,
            result.file_stats,
            complete=result.complete,
            known=ctx.file_stats if ctx is not None else None,
            folders=ctx.scope.walked if ctx is not None and ctx.scope is not None else None,
        )
    return bool(plan.changes)


def _save_source_state(conn: Connection, result: SourceResult, ctx: SourceContext) -> None:
    t = s.source_state
    old = {r.key: r.value for r in conn.execute(sa.select(t).where(t.c.source == result.name))}
    for key, value in ctx.state.items():
        if key not in old:
            conn.execute(sa.insert(t).values(source=result.name, key=key, value=value))
        elif old[key] != value:
            conn.execute(
                sa.update(t).where(t.c.source == result.name, t.c.key == key).values(value=value)
            )
    for key in set(old) - set(ctx.state):
        conn.execute(sa.delete(t).where(t.c.source == result.name, t.c.key == key))


def _publish_due(conn: Connection, now: datetime, generation: int) -> bool:
    """Scheduled articles whose time has come become published."""
    a = s.articles
    res = conn.execute(
        sa.update(a)
        .where(a.c.status == ArticleStatus.SCHEDULED.value, a.c.published <= now)
        .values(status=ArticleStatus.PUBLISHED.value, changed_generation=generation)
    )
    return bool(res.rowcount)


def _source_report(result: SourceResult, plan: Plan) -> SourceReport:
    counts: dict[str, Any] = {k: plan.count(k) for k in KINDS[:-1]}  # type: ignore[arg-type]
    counts["rejected"] = len(plan.rejected)
    return SourceReport(
        result.name,
        result.status,
        result.error,
        counts,
        list(result.warnings),
        result.listing_fingerprint,
    )
