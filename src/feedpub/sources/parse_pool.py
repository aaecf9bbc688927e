"""Parsing many content files on every core: a process pool over ``folder.parse_file``.

``parse_file`` stays the one callable that does all the work on one file (reading,
limits, front matter, rendering, sanitizing); the pool only runs it in worker processes
and hands the results back in the order of the input, so what a collect stores and
builds is the same, byte for byte, as when one process parses everything
(tests/test_parse_pool.py). Small batches (a tick with a few changed files) are parsed
in the calling process: starting workers would cost more than it saves.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from feedpub.config import FolderSourceConfig
from feedpub.errors import ContentError
from feedpub.sources.base import SourceContext
from feedpub.types import ParsedArticle
from feedpub.workers import start_method, workers

# Below this many files to parse, one process parses them (workers take ~0.3 s to start).
MIN_PARALLEL = 400
CHUNK = 32  # files per task sent to a worker
WINDOW = 8  # chunks in flight per worker: enough to keep them busy while a batch is written

ParseFile = Callable[[Path, str, SourceContext, FolderSourceConfig, str], ParsedArticle]
Outcome = ParsedArticle | ContentError

_worker: tuple[ParseFile, SourceContext, FolderSourceConfig, str] | None = None


def parse_all(
    parse_file: ParseFile,
    jobs: Sequence[tuple[str, str]],
    ctx: SourceContext,
    cfg: FolderSourceConfig,
    source: str,
    *,
    processes: int | None = None,
    min_parallel: int | None = None,
) -> Iterator[tuple[str, Outcome]]:
    """(rel, parsed article or the ContentError that rejected it) for each (rel, path)
    of ``jobs``, in the order of ``jobs``."""
    processes = workers() if processes is None else processes
    threshold = MIN_PARALLEL if min_parallel is None else min_parallel
    if processes <= 1 or len(jobs) < max(threshold, 2):
        for rel, path in jobs:
            yield rel, _one(parse_file, path, rel, ctx, cfg, source)
        return
    # The workers need the configuration and the collection time, not what the store
    # holds (which can be 100,000 keys): each gets them once, not with every file.
    slim = replace(ctx, state={}, known={}, file_stats={}, live_keys=set(), hint=None, scope=None)
    mp = start_method()
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=mp,
        initializer=_init,
        initargs=(parse_file, slim, cfg, source),
    ) as pool:
        # A bounded window of chunks in flight, not all of them: results are handed on
        # as they come (a streamed collect writes them) and never pile up in memory.
        chunks = [jobs[i : i + CHUNK] for i in range(0, len(jobs), CHUNK)]
        window: deque[tuple[Sequence[tuple[str, str]], Future[list[Any]]]] = deque()
        todo = iter(chunks)
        for chunk in itertools.islice(todo, processes * WINDOW):
            window.append((chunk, pool.submit(_parse_chunk, chunk)))
        while window:
            chunk, fut = window.popleft()
            outcomes = fut.result()
            nxt = next(todo, None)
            if nxt is not None:
                window.append((nxt, pool.submit(_parse_chunk, nxt)))
            for (rel, _path), out in zip(chunk, outcomes, strict=True):
                yield rel, _outcome(out)


def _one(
    parse_file: ParseFile,
    path: str,
    rel: str,
    ctx: SourceContext,
    cfg: FolderSourceConfig,
    source: str,
) -> Outcome:
    try:
        return parse_file(Path(path), rel, ctx, cfg, source)
    except ContentError as e:
        return e


def _init(parse_file: ParseFile, ctx: SourceContext, cfg: FolderSourceConfig, source: str) -> None:
    global _worker
    _worker = (parse_file, ctx, cfg, source)


def _parse_chunk(chunk: Sequence[tuple[str, str]]) -> list[Any]:
    assert _worker is not None, "worker not initialised"
    parse_file, ctx, cfg, source = _worker
    out: list[Any] = []
    for rel, path in chunk:
        res = _one(parse_file, path, rel, ctx, cfg, source)
        # ContentError's constructor takes (source, reason, line): sent as its fields.
        out.append(
            ("rejected", res.source, res.reason, res.line) if isinstance(res, ContentError) else res
        )
    return out


def _outcome(out: Any) -> Outcome:
    if isinstance(out, tuple) and out and out[0] == "rejected":
        return ContentError(out[1], out[2], line=out[3])
    assert isinstance(out, ParsedArticle)
    return out
