"""Rendering a full build's documents (every archive page and current feed of every
feed) with each article's entries rendered once (:mod:`feedpub.feeds.fragments`).

The builder plans every feed first (``builder._Builder``: which documents changed), then
the documents are rendered here in *archive order across feeds*: a document's position
is that of its newest article in the site feed's sequence, so a beat's or author's page
comes right after the site pages holding the same articles, whose entries are still
cached. In worker processes each takes one contiguous run of that order.

An archive page is assembled from cached entries when the streaming writer renders
archives (``[output] writer`` "auto" or "stream"). The plain path (load the articles,
build the document, :func:`feedpub.feeds.guard.render_guarded`) renders a current feed
(feedgen writes those, and the beat/author page is made from its document), a page
when the writers are "feedgen", and any page where something is out of the ordinary:
an article a writer refuses or that cannot be turned into an item (the plain path
names it), or a document over ``max_feed_bytes`` (the plain path cuts it to summaries).
Either way the bytes are the same (tests/test_feed_render_reuse.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from feedpub.config import Config
from feedpub.feeds.fragments import Fragment, FragmentCache, Key, assemble, make_fragment
from feedpub.feeds.model import FeedInfo, FeedKind, Format
from feedpub.feeds.output import OutputDir
from feedpub.feeds.plan import AuthorRow, FeedSpec, make_info, to_item
from feedpub.types import Article, ArticleStatus

# Entries loaded per query batch (as the plain path batches documents).
BATCH_ITEMS = 1000
# Module switch: False renders every document on the plain path (tests compare both).
REUSE = True


@dataclass(frozen=True, slots=True)
class Job:
    """One document to render: ``seq`` is its place in the build's canonical order."""

    seq: int
    spec: FeedSpec
    page: int | None  # None: the current feed
    n_full: int
    ids: tuple[str, ...]  # its visible articles
    gens: tuple[int, ...]  # their generations (changed_generation)
    fp: str

    @property
    def keys(self) -> list[Key]:
        return list(zip(self.ids, self.gens, strict=True))


@dataclass
class DocOut:
    """What rendering one document adds to the build, in the order the plain path adds it."""

    written: list[str] = field(default_factory=list)
    records: list[tuple[str, str, datetime | None]] = field(default_factory=list)
    items_written: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    summarized: dict[str, int] = field(default_factory=dict)
    changed_feeds: list[str] = field(default_factory=list)


class Host(Protocol):
    """What the renderer needs from the builder."""

    config: Config
    out: OutputDir
    now: datetime
    empty_updated: datetime
    authors: dict[str, AuthorRow]
    beat_titles: dict[str, str]

    def load(self, ids: Sequence[str]) -> list[Article]: ...

    def render_plain(self, job: Job) -> DocOut: ...


def order(jobs: Sequence[Job], position: Mapping[str, int]) -> list[Job]:
    """Jobs in archive order across feeds (by their newest article's place in the site
    feed), canonical order among equals. An empty document takes its predecessor's."""
    keyed: list[tuple[int, int, Job]] = []
    last = 0
    for job in jobs:
        pos = max((position.get(i, 0) for i in job.ids), default=last)
        last = pos
        keyed.append((pos, job.seq, job))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [j for _, _, j in keyed]


def _weight(job: Job) -> int:
    # A current feed takes the plain path (load, items, feedgen, its HTML page): about
    # three times the cost per entry of an archive page assembled from cached entries
    # (3x balanced two workers best at 10,000 and 100,000).
    return (len(job.ids) * (3 if job.page is None else 1)) + 1


def split(jobs: Sequence[Job], parts: int) -> list[list[Job]]:
    """Contiguous runs of ``jobs`` with about the same work each."""
    total = sum(_weight(j) for j in jobs)
    out: list[list[Job]] = [[]]
    acc = 0
    for job in jobs:
        if len(out) < parts and acc >= total * len(out) / parts:
            out.append([])
        out[-1].append(job)
        acc += _weight(job)
    return [run for run in out if run]


class Renderer:
    def __init__(self, host: Host, cache: FragmentCache, *, reuse_archives: bool) -> None:
        self.host = host
        self.cache = cache
        self.reuse_archives = reuse_archives and REUSE
        self.max_bytes = host.config.output.max_feed_bytes
        self._lang_info: FeedInfo | None = None

    def run(self, jobs: Sequence[Job]) -> list[tuple[int, DocOut]]:
        """Render ``jobs`` in this order; (seq, what each added)."""
        results: list[tuple[int, DocOut]] = []
        batch: list[Job] = []
        count = 0
        for job in jobs:
            if not self._reusable(job):
                results.extend(self._flush(batch))
                batch, count = [], 0
                results.append((job.seq, self.host.render_plain(job)))
                continue
            batch.append(job)
            count += len(job.ids)
            if count >= BATCH_ITEMS:
                results.extend(self._flush(batch))
                batch, count = [], 0
        results.extend(self._flush(batch))
        return results

    def _reusable(self, job: Job) -> bool:
        return self.reuse_archives and job.page is not None

    def _flush(self, batch: Sequence[Job]) -> list[tuple[int, DocOut]]:
        if not batch:
            return []
        local, bad = self._entries(batch)
        out = []
        for job in batch:
            res = None if any(k in bad for k in job.keys) else self._assembled(job, local)
            out.append((job.seq, res if res is not None else self.host.render_plain(job)))
        return out

    def _entries(self, batch: Sequence[Job]) -> tuple[dict[Key, Fragment | None], set[Key]]:
        """Every entry the batch needs (None: not visible any more) and the keys whose
        article a writer refused (those documents take the plain path)."""
        local: dict[Key, Fragment | None] = {}
        missing: list[Key] = []
        for job in batch:
            for key in job.keys:
                if key in local:
                    continue
                frag = self.cache.get(key)
                local[key] = frag
                if frag is None:
                    missing.append(key)
        bad: set[Key] = set()
        if not missing:
            return local, bad
        host = self.host
        by_id = {a.id: a for a in host.load(list(dict.fromkeys(i for i, _ in missing)))}
        info = self._language_info()
        for key in missing:
            a = by_id.get(key[0])
            if a is None or a.status is not ArticleStatus.PUBLISHED or a.published > host.now:
                continue  # left out, as the plain path leaves it out
            try:
                item = to_item(a, host.config, host.authors, host.beat_titles)
                frag = make_fragment(item, info)
            except Exception:  # the plain path names it in the report
                bad.add(key)
                continue
            local[key] = frag
            self.cache.put(key, frag)
        return local, bad

    def _assembled(self, job: Job, local: Mapping[Key, Fragment | None]) -> DocOut | None:
        host = self.host
        entries = [f for f in (local[k] for k in job.keys) if f is not None]
        entries.sort(key=lambda f: (f.published, f.id), reverse=True)
        updated = max((f.updated for f in entries), default=host.empty_updated)
        info = make_info(host.config, job.spec, updated, page=job.page, n_full=job.n_full)
        data = assemble(info, entries)
        if any(len(b) > self.max_bytes for b in data.values()) and entries:
            return None  # over the byte budget: the plain path cuts it to summaries
        res = DocOut()
        for f in Format:
            p = job.spec.path(f, job.page)
            if host.out.write(p, data[f]):
                res.written.append(p)
            res.items_written += len(entries)
            res.records.append((p, job.fp, info.updated))
        return res

    def _language_info(self) -> FeedInfo:
        """A document info in the site's language: all an entry reads of its document."""
        if self._lang_info is None:
            site = FeedSpec(FeedKind.SITE, "", "", "", "", "")
            self._lang_info = make_info(
                self.host.config, site, self.host.empty_updated, page=None, n_full=0
            )
        return self._lang_info
