"""A large batch of content files (a first import, a rules change) is collected in
batches: parse a few hundred files (on every core), decide, write them in a transaction
of their own, forget them, go on. Memory stays flat whatever the archive's size, and what
ends up in the store is what one transaction for everything writes
(tests/test_collect_stream.py).

Each batch reads from the store only the articles it may touch (its keys, its URLs and
the ids its articles would get), inside its own transaction. Retractions need the whole
listing: collect's main transaction decides them afterwards, with the other sources.
Bio lines (pasted .txt files) assign authors to beats for every article of the run, so
the .txt files are parsed before the first batch. A collect interrupted half-way keeps
the batches it wrote; the next one skips their files (same size and mtime).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import planner_stats
from feedpub import schema as s
from feedpub.config import Config
from feedpub.decide import BeatRules, Kind, Plan, index_by_url, mint_id, plan_source
from feedpub.errors import ContentError
from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.folder import FolderSource, Listing, add_outcome
from feedpub.store import Store, StoredArticleState
from feedpub.types import ParsedArticle

log = logging.getLogger("feedpub.collect")

STREAM_MIN = 2000  # files to parse from one folder above which it is collected in batches
BATCH = 500  # files per batch (and per write transaction)
KEYS_PER_QUERY = 400  # bound parameters per IN (...) list
# The tables a collect writes in bulk, whose planner statistics it keeps current
# (feedpub.planner_stats), and the counted kinds that are rows written.
COLLECT_TABLES = (s.articles, s.article_authors, s.source_files)
WRITTEN: tuple[Kind, ...] = ("new", "updated", "retracted")

# (connection, batch, its plan, generation) -> whether it wrote anything
WriteBatch = Callable[[Connection, SourceResult, Plan, int], bool]
Outcome = ParsedArticle | ContentError


@dataclass
class Stream:
    src: FolderSource
    ctx: SourceContext
    listing: Listing
    pre: dict[str, Outcome] = field(default_factory=dict)  # the .txt files, parsed first
    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[ContentError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    wrote: bool = False

    def bios(self) -> list[tuple[str, str | None]]:
        """Parse the pasted (.txt) files: their bio lines apply to the whole run."""
        txt = [(rel, path) for rel, path in self.listing.jobs if rel.lower().endswith(".txt")]
        self.pre = dict(self.src.outcomes(txt, self.ctx))
        return [
            (a, beat)
            for p in self.pre.values()
            if isinstance(p, ParsedArticle)
            for a, _bio, beat in p.author_bios
        ]


def run_stream(
    stream: Stream,
    store: Store,
    config: Config,
    *,
    now: datetime,
    rules_for: Callable[[Connection], BeatRules],
    author_slugs: dict[str, str],
    write: WriteBatch,
) -> None:
    """Parse, decide and write the stream's jobs batch by batch. Afterwards
    ``stream.listing.result`` stands for the source as a whole (every file listed,
    nothing left to parse), for collect's main transaction to decide retractions."""
    listing, name = stream.listing, stream.src.name
    everything = {rel for rel, _ in listing.jobs} | listing.result.unchanged_keys
    parsed_ok: dict[str, tuple[int, int]] = {}
    unanalyzed = 0  # rows written since the planner statistics were last gathered
    for batch in _batches(stream):
        batch.unchanged_keys = everything  # what is present: the whole listing
        parsed_ok.update(batch.file_stats)
        with store.begin() as conn:
            stored = states_for(store, conn, batch, config)
            plan = plan_source(
                batch,
                stored=stored,
                by_url=index_by_url(stored),
                by_id={st.id: st for st in stored},
                rules=rules_for(conn),
                author_slugs=author_slugs,
                now=now,
                tz=config.site.tz,
            )
            if write(conn, batch, plan, store.generation(conn) + 1):
                store.bump_generation(conn)
                stream.wrote = True
            # The table grows from the batches: the next batch's lookups are planned on
            # its size, not on the empty table of a first import (feedpub.planner_stats).
            unanalyzed += sum(plan.count(k) for k in WRITTEN)
            if planner_stats.refresh(conn, COLLECT_TABLES, written=unanalyzed, scale=1.0):
                unanalyzed = 0
        for kind in ("new", "updated", "scheduled", "retracted"):
            stream.counts[kind] = stream.counts.get(kind, 0) + plan.count(kind)
        # plan.unchanged starts at len(unchanged_keys): the listing, not this batch.
        found_same = plan.count("unchanged") - len(everything)
        stream.counts["unchanged"] = stream.counts.get("unchanged", 0) + found_same
        stream.rejected.extend(plan.rejected)
        stream.warnings.extend(batch.warnings)
    result = listing.result
    result.file_stats.update(parsed_ok)
    result.unchanged_keys = everything
    log.info("collected in batches", extra={"source": name, "files": len(listing.jobs)})


def refresh_statistics(store: Store, written: int) -> None:
    """PostgreSQL: the planner statistics of the tables a collect writes, in a transaction
    of their own (feedpub.planner_stats); ``written``: the rows it wrote. SQLite:
    nothing, and no write lock taken for it."""
    if not store.is_sqlite:
        with store.begin() as conn:
            planner_stats.refresh(conn, COLLECT_TABLES, written=written)


def _batches(stream: Stream) -> Iterator[SourceResult]:
    """The listing's jobs parsed (the .txt outcomes taken from ``stream.pre``), as
    results of at most BATCH files, in listing order."""
    listing, pre = stream.listing, stream.pre
    rest = stream.src.outcomes([j for j in listing.jobs if j[0] not in pre], stream.ctx)
    out, n = SourceResult(name=stream.src.name), 0
    for rel, _path in listing.jobs:
        if rel in pre:
            outcome = pre.pop(rel)
        else:
            got, outcome = next(rest)
            assert got == rel, (got, rel)
        add_outcome(out, rel, outcome, listing.stats[rel])
        n += 1
        if n == BATCH:
            yield out
            out, n = SourceResult(name=stream.src.name), 0
    if n:
        yield out


def states_for(
    store: Store, conn: Connection, batch: SourceResult, config: Config
) -> list[StoredArticleState]:
    """The stored articles a batch may touch: same source and key, same URL, or the id
    its article has or would get."""
    a = s.articles
    keys = [p.key for p in batch.articles] + sorted(batch.drafts)
    urls = [p.url for p in batch.articles]
    ids = [p.explicit_id or mint_id(p.url, p.published, config.site.tz) for p in batch.articles]
    found: dict[str, StoredArticleState] = {}
    for cond in _conditions(a.c.source_key, keys, a.c.source == batch.name):
        found.update((st.id, st) for st in store.article_states(conn, where=cond))
    for column, values in ((a.c.url, urls), (a.c.id, ids)):
        for cond in _conditions(column, values, None):
            found.update((st.id, st) for st in store.article_states(conn, where=cond))
    return list(found.values())


def _conditions(
    column: sa.ColumnElement[str], values: Iterable[str], extra: sa.ColumnElement[bool] | None
) -> Iterator[sa.ColumnElement[bool]]:
    it = iter(dict.fromkeys(values))
    while chunk := list(islice(it, KEYS_PER_QUERY)):
        cond = column.in_(chunk)
        yield cond if extra is None else sa.and_(extra, cond)
