"""The feed builder's work for one build: which feeds to render, rendering them (in this
process or in worker processes: ``feed_pool``), writing the files and collecting what
the build records and reports. ``feedpub.feeds.build`` decides whether there is work
and records it (split from it to keep each module readable)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from feedpub.config import Config
from feedpub.feeds import (
    discovery,
    feed_pool,
    feedgen_writer,
    jsonfeed,
    queries,
    render,
    stream_writer,
)
from feedpub.feeds.discovery import GROUPS as GROUPS
from feedpub.feeds.fragments import FragmentCache
from feedpub.feeds.guard import render_guarded
from feedpub.feeds.model import FeedDoc, FeedKind, Format
from feedpub.feeds.output import OutputDir
from feedpub.feeds.pages import feed_page
from feedpub.feeds.plan import (
    PAGE_NAME,
    AuthorRow,
    FeedSpec,
    Slot,
    affected_feeds,
    config_fingerprint,
    current_ids,
    doc_fingerprint,
    feed_specs,
    feeds_url,
    full_pages,
    make_doc,
    page_of,
    page_size,
    tail_of,
    to_item,
)
from feedpub.feeds.render import DocOut, Job
from feedpub.feeds.report import BuildReport as BuildReport
from feedpub.feeds.report import next_due
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus

log = logging.getLogger("feedpub.feeds")

Renderer = Callable[[FeedDoc], bytes]
FEEDGEN: dict[Format, Renderer] = {
    Format.RSS: feedgen_writer.render_rss,
    Format.ATOM: feedgen_writer.render_atom,
    Format.JSON: jsonfeed.render_json,
}
STREAM: dict[Format, Renderer] = {
    Format.RSS: stream_writer.render_rss,
    Format.ATOM: stream_writer.render_atom,
    Format.JSON: jsonfeed.render_json,
}


def _slots(counts: dict[str, int]) -> int:
    return sum(counts.values())


def _renderer(settings: dict[str, Any]) -> Callable[[list[Job]], list[tuple[int, DocOut]]]:
    """In a worker: a builder of its own (its own read connection, its own cache of
    rendered entries) rendering runs of documents, handing back what each added."""
    store = Store.for_reading(settings["url"])
    conn = store.engine.connect()
    builder = _Builder(
        settings["config"], store, conn, settings["now"], settings["force"], BuildReport(),
        settings["began"],
    )  # fmt: skip
    builder.authors = settings["authors"]
    builder.config_fp = settings["config_fp"]
    builder.counts = settings["counts"]
    renderer = builder.job_renderer()

    def render(jobs: list[Job]) -> list[tuple[int, DocOut]]:
        out = renderer.run(jobs)
        builder.out.sync()  # this worker's renames are durable before the build records them
        return out

    return render


def _key_json(key: queries.Key) -> list[str]:
    return [key[0].isoformat(), key[1].isoformat(), key[2]]


def _key_parse(raw: list[str]) -> queries.Key:
    return (datetime.fromisoformat(raw[0]), datetime.fromisoformat(raw[1]), raw[2])


def _in_feed(spec: FeedSpec, c: queries.Changed) -> bool:
    if spec.kind is FeedKind.SITE:
        return True
    if spec.kind is FeedKind.BEAT:
        return c.beat == spec.key
    return spec.key in c.authors


class _Builder:
    def __init__(
        self,
        config: Config,
        store: Store,
        conn: Connection,
        now: datetime,
        force: bool,
        report: BuildReport,
        began: datetime,
    ) -> None:
        self.config = config
        self.store = store
        self.conn = conn
        self.now = now
        self.empty_updated = began  # the date of a feed with no item yet
        self.force = force
        self.report = report
        self.out = OutputDir(config.output_dir)
        self.size = page_size(config)
        self.base = feeds_url(config)
        self.records: list[tuple[str, str, datetime | None]] = []
        self.counts: dict[str, int] = {}
        self.count_rows = 0  # the store's count rows read (feed_counts.read)
        self.full = False  # every feed planned, counts from the articles themselves
        self.feed_state: dict[str, Any] = {}
        self.next_due: datetime | None = None
        self.config_fp = ""
        writer = config.output.writer
        self.current_writer = STREAM if writer == "stream" else FEEDGEN
        self.archive_writer = FEEDGEN if writer == "feedgen" else STREAM
        self.authors: dict[str, AuthorRow] = {}
        self.beat_titles = {b.slug: b.title for b in config.beats}
        tdir = config.output.templates_dir
        self.templates_dir = config.resolve(tdir) if tdir else None
        # A full build: the documents planned, rendered after every feed is planned
        # (a Job, or the paths of a feed's pages past its end), and the site's positions.
        self._plan: list[Job | tuple[str, ...]] | None = None
        self._positions: dict[str, int] = {}
        self._ids: dict[str, str] = {}
        self._renderer: render.Renderer | None = None

    def run(self, state: dict[str, Any] | None, built: int | None) -> None:
        conn = self.conn
        authors = queries.load_authors(conn)
        self.authors = {a.slug: a for a in authors}
        self.config_fp = config_fingerprint(self.config, authors)
        specs = feed_specs(self.config, authors)
        self.next_due = next_due(conn, self.now)
        incremental = (
            not self.force
            and state is not None
            and state.get("config") == self.config_fp
            and state.get("size") == self.size
            and isinstance(state.get("feeds"), dict)
            and not state.get("refused")  # look at every feed: those documents have no fp
        )
        self.full = not incremental
        self.counts, self.count_rows = queries.slot_counts(conn, exact=self.full)
        changed: list[queries.Changed] | None = None
        if incremental:
            assert state is not None
            self.feed_state = dict(state["feeds"])
            built_at = datetime.fromisoformat(str(state["built_at"]))
            changed = queries.changed_since(conn, built or 0, built_at, self.now)
            old_counts = state.get("counts")
            wanted = affected_feeds(
                [(c.beat, c.authors) for c in changed],
                old_counts if isinstance(old_counts, dict) else {},
                self.counts,
            )
        else:
            wanted = {sp.ident for sp in specs}
        tasks: list[tuple[FeedSpec, dict[str, Any] | None, list[queries.Changed] | None]] = [
            (
                spec,
                self.feed_state.get(spec.ident),
                [c for c in changed if _in_feed(spec, c)] if changed is not None else None,
            )
            for spec in specs
            if spec.ident in wanted
        ]
        self.report.feeds_planned += len(tasks)
        if changed is None:
            self._full([spec for spec, _, _ in tasks])
            self._remove_stale(specs)
        else:
            for spec, fstate, mine in tasks:
                self._feed(spec, fstate, mine)
        self._discovery(specs)

    def _settings(self) -> dict[str, Any]:
        """What a worker needs to render feeds as this builder would."""
        return {
            "config": self.config,
            "url": self.store.url,
            "now": self.now,
            "force": self.force,
            "began": self.empty_updated,
            "authors": self.authors,
            "config_fp": self.config_fp,
            "counts": self.counts,
        }

    # ---- a full build: plan every feed, render in archive order, merge in feed order ----
    def _full(self, specs: Sequence[FeedSpec]) -> None:
        processes = feed_pool.workers()
        pool = None
        if processes > 1 and _slots(self.counts) >= feed_pool.MIN_SLOTS:
            # Every feed's archive, rendered on every core; the workers start now, small.
            pool = feed_pool.Pool(_renderer, self._settings(), processes)
        try:
            self._plan, self._positions = [], {}
            for spec in specs:
                self._feed_full(spec)
            plan, self._plan = self._plan, None
            jobs = render.order([e for e in plan if isinstance(e, Job)], self._positions)
            self._positions, self._ids = {}, {}
            if pool is not None:
                results = pool.render(render.split(jobs, processes))
            else:
                results = self.job_renderer().run(jobs)
        finally:
            if pool is not None:
                pool.close()
        done = dict(results)
        for entry in plan:
            if isinstance(entry, Job):
                self._add(done.pop(entry.seq))
                continue
            for path in entry:
                self.out.remove(path)
                self.report.removed.append(path)

    def _add(self, res: DocOut) -> None:
        self.records.extend(res.records)
        self.report.written.extend(res.written)
        self.report.changed_feeds.extend(res.changed_feeds)
        self.report.items_written += res.items_written
        self.report.refused.update(res.refused)
        self.report.summarized.update(res.summarized)

    def job_renderer(self) -> render.Renderer:
        if self._renderer is None:
            reuse = self.archive_writer is STREAM
            self._renderer = render.Renderer(self, FragmentCache(), reuse_archives=reuse)
        return self._renderer

    def load(self, ids: Sequence[str]) -> list[Article]:
        return queries.load_by_ids(self.conn, self.store, ids)

    def render_plain(self, job: Job) -> DocOut:
        """One planned document on the plain path (load, build the document, render)."""
        saved = self.report, self.records
        self.report, self.records = BuildReport(), []
        try:
            slots = [Slot(i, g, True) for i, g in job.keys]
            self._render(job.spec, [(job.page, job.n_full, slots, dict.fromkeys(Format, job.fp))])
            r = self.report
            return DocOut(
                r.written, self.records, r.items_written, r.refused, r.summarized, r.changed_feeds
            )
        finally:
            self.report, self.records = saved

    def _remove_stale(self, specs: Sequence[FeedSpec]) -> None:
        """Files of feeds that no longer exist (a beat removed from the config, a path
        pattern changed): delete them so no feed silently stops updating."""
        live = {sp.ident for sp in specs}
        self.feed_state = {k: v for k, v in self.feed_state.items() if k in live}
        keep = {p for p, _f, _u in self.records}
        keep |= set(self.report.removed)
        current = {sp.path(f) for sp in specs for f in Format}
        current |= {sp.dir + PAGE_NAME for sp in specs if sp.page}
        dirs = tuple(sp.dir + "archive/" for sp in specs)
        for path in queries.recorded_paths(self.conn):
            if path in keep or path in current or path.startswith(dirs):
                continue
            self.out.remove(path)
            self.report.removed.append(path)
            log.info("removed the file of a feed that no longer exists", extra={"path": path})

    # ---- one feed ------------------------------------------------------------------------
    def _feed(
        self, spec: FeedSpec, fstate: dict[str, Any] | None, changed: list[queries.Changed] | None
    ) -> None:
        fast = changed is not None and fstate is not None and fstate.get("k") is not None
        if fast and self._feed_fast(spec, fstate or {}, changed or []):
            return
        self._feed_full(spec)

    def _feed_fast(
        self, spec: FeedSpec, fstate: dict[str, Any], changed: list[queries.Changed]
    ) -> bool:
        """Only the open end moved: the full pages (all before key K) are untouched when
        no changed article of this feed sits before K and K still has exactly
        n_full * size slots before it (nothing left or entered there). False: do it all."""
        size = self.size
        n_old = int(fstate["n_full"])
        k = _key_parse(fstate["k"])
        if any(c.key <= k for c in changed):
            return False
        tail = queries.load_tail(self.conn, spec, self.now, k)
        if self.counts.get(spec.ident, 0) - len(tail) != n_old * size:
            return False
        new_pages = len(tail) // size
        stored = queries.stored_files(self.conn, spec) if new_pages else {}
        for j in range(new_pages):
            page = n_old + 1 + j
            chunk = [sl for sl, _ in tail[j * size : (j + 1) * size]]
            self._documents(spec, [(page, 0, [sl for sl in chunk if sl.visible])], stored)
        n_full = n_old + new_pages
        if new_pages:
            self.feed_state[spec.ident] = {
                "n_full": n_full,
                "k": _key_json(tail[new_pages * size - 1][1]),
            }
        rest = [sl for sl, _ in tail[new_pages * size :]]
        self._current(spec, n_full, rest, {sl.id: sl.generation for sl, _ in tail}, stored=None)
        return True

    def _feed_full(self, spec: FeedSpec) -> None:
        if not self.config.output.archives:
            self._feed_current_only(spec)
            return
        conn = self.conn
        size = self.size
        slots = queries.load_slots(conn, spec, self.now)
        if self._plan is not None and spec.kind is FeedKind.SITE:
            self._positions = {sl.id: i for i, sl in enumerate(slots)}
            self._ids = {i: i for i in self._positions}
        n_full = full_pages(len(slots), size)
        stored = queries.stored_files(conn, spec)
        pages = []
        for page in range(1, n_full + 1):
            visible = [sl for sl in page_of(slots, page, size) if sl.visible]
            pages.append((page, 0, visible))  # an archive page never depends on n_full
        self._documents(spec, pages, stored)
        self._current(
            spec, n_full, tail_of(slots, size), {sl.id: sl.generation for sl in slots}, stored
        )
        self.feed_state[spec.ident] = {
            "n_full": n_full,
            "k": _key_json(queries.slot_key(conn, slots[n_full * size - 1].id)) if n_full else None,
        }
        # Pages past the end (articles left the feed): remove them.
        keep = {spec.path(f, p) for f in Format for p in range(1, n_full + 1)}
        keep |= {spec.path(f) for f in Format} | {spec.dir + PAGE_NAME}
        self._drop(sorted(set(stored) - keep))

    def _feed_current_only(self, spec: FeedSpec) -> None:
        """``[output] archives = false``: the feed is its newest ``items_per_feed``
        visible articles, read with one bounded query (not the whole sequence); archive
        pages of earlier builds are removed."""
        stored = queries.stored_files(self.conn, spec)
        self._current(spec, 0, (), {}, stored)
        self.feed_state[spec.ident] = {"n_full": 0, "k": None}
        keep = {spec.path(f) for f in Format} | {spec.dir + PAGE_NAME}
        self._drop(sorted(set(stored) - keep))

    def _drop(self, stale: Sequence[str]) -> None:
        """Remove files past a feed's end: after the render in a full build (planned)."""
        if self._plan is not None:
            self._plan.append(tuple(stale))
            return
        for path in stale:
            self.out.remove(path)
            self.report.removed.append(path)

    def _current(
        self,
        spec: FeedSpec,
        n_full: int,
        tail: Sequence[Slot],
        gens: dict[str, int],
        stored: dict[str, str] | None,
    ) -> None:
        newest = queries.newest_ids(self.conn, spec, self.now, self.config.output.items_per_feed)
        cur = current_ids(newest, tail)
        missing = [i for i in cur if i not in gens]
        if missing:  # newest articles that sit before the open end (fast path)
            gens.update(queries.generations(self.conn, missing))
        cur_slots = sorted((Slot(i, gens[i], True) for i in cur), key=lambda sl: sl.id)
        if stored is None:
            stored = queries.stored_current(self.conn, spec)
        self._documents(spec, [(None, n_full, cur_slots)], stored)

    def _documents(
        self,
        spec: FeedSpec,
        docs: Sequence[tuple[int | None, int, Sequence[Slot]]],
        stored: dict[str, str],
    ) -> None:
        """Render the documents whose fingerprints changed, loading articles in batches."""
        todo: list[tuple[int | None, int, Sequence[Slot], dict[Format, str]]] = []
        for page, n_full, slots in docs:
            items_key = [(sl.id, sl.generation) for sl in slots]
            fp = doc_fingerprint(self.config_fp, spec.path(Format.ATOM, page), n_full, items_key)
            if (
                not self.force
                and all(stored.get(spec.path(f, page)) == fp for f in Format)
                and (page is not None or (self.out.root / spec.path(Format.ATOM)).exists())
                and (page is not None or not spec.page or stored.get(spec.dir + PAGE_NAME) == fp)
            ):
                self.report.unchanged += 1
                continue
            todo.append((page, n_full, slots, dict.fromkeys(Format, fp)))
        if self._plan is not None:  # a full build: rendered once every feed is planned
            for page, n_full, slots, fps in todo:
                # One str per article across feeds (the site's): the plan stays small.
                ids = tuple(self._ids.get(sl.id, sl.id) for sl in slots)
                gens = tuple(sl.generation for sl in slots)
                job = Job(len(self._plan), spec, page, n_full, ids, gens, fps[Format.ATOM])
                self._plan.append(job)
            return
        batch: list[tuple[int | None, int, Sequence[Slot], dict[Format, str]]] = []
        count = 0
        for entry in todo:
            batch.append(entry)
            count += len(entry[2])
            if count >= 1000:
                self._render(spec, batch)
                batch, count = [], 0
        if batch:
            self._render(spec, batch)

    def _render(
        self,
        spec: FeedSpec,
        batch: Sequence[tuple[int | None, int, Sequence[Slot], dict[Format, str]]],
    ) -> None:
        ids = [sl.id for _, _, slots, _ in batch for sl in slots]
        by_id = {a.id: a for a in queries.load_by_ids(self.conn, self.store, ids)}
        for page, n_full, slots, fps in batch:
            items = []
            for sl in slots:
                a = by_id.get(sl.id)
                if (
                    a is not None
                    and a.status is ArticleStatus.PUBLISHED
                    and a.published <= self.now
                ):
                    try:
                        items.append(to_item(a, self.config, self.authors, self.beat_titles))
                    except Exception as e:  # one stored article never stops the build
                        self.report.refused[a.id] = f"{type(e).__name__}: {str(e)[:200]}"
            doc = make_doc(
                self.config, spec, items, page=page, n_full=n_full, empty_updated=self.empty_updated
            )
            writers = self.archive_writer if page is not None else self.current_writer
            changed_any = False
            out = render_guarded(writers, doc, max_bytes=self.config.output.max_feed_bytes)
            self.report.refused.update(out.refused)
            for f in Format:
                p = spec.path(f, page)
                if self.out.write(p, out.data[f]):
                    self.report.written.append(p)
                    changed_any = True
                self.report.items_written += out.items
                if f in out.summarized:
                    self.report.summarized[p] = out.summarized[f]
                # A refused item: no fingerprint, so the next build tries (and names) it again.
                self.records.append((p, "" if out.refused else fps[f], doc.info.updated))
            if changed_any and page is None:
                self.report.changed_feeds.extend(self.base + spec.path(f) for f in Format)
            if page is None and spec.page:
                self._page(spec, doc, fps[Format.ATOM])

    def _page(self, spec: FeedSpec, doc: FeedDoc, fp: str) -> None:
        """The beat's or author's HTML page, from the current feed's document."""
        path = spec.dir + PAGE_NAME
        data = feed_page(self.config, spec, doc, self.authors, self.base, self.templates_dir)
        if self.out.write(path, data):
            self.report.written.append(path)
        self.records.append((path, fp, doc.info.updated))

    def _discovery(self, specs: Sequence[FeedSpec]) -> None:
        written = discovery.write_discovery(
            self.config, self.conn, self.out, self.base, specs, self.records
        )
        self.report.written.extend(written)
