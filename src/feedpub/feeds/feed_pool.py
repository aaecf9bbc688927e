"""Rendering many feeds on every core: a full build (the first one, ``--force``, a
configuration change) renders every archive page of every feed; the feeds are
independent, so worker processes render them, each with its own read connection, and
the results are merged in the order of the feeds: the files, the build's record and its
report are the same as when one process renders them all (tests/test_feed_pool.py).

An incremental build touches a few documents: it stays in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedpub.feeds.plan import FeedSpec
from feedpub.workers import start_method
from feedpub.workers import workers as workers

# A full build renders every slot of every feed; below this many, one process does it.
MIN_SLOTS = 3000


@dataclass
class FeedResult:
    """What rendering one feed adds to the build."""

    records: list[tuple[str, str, datetime | None]]
    written: list[str]
    removed: list[str]
    changed_feeds: list[str]
    unchanged: int
    items_written: int
    feed_state: dict[str, Any]
    refused: dict[str, str]  # article id -> why a writer refused it
    summarized: dict[str, int]  # path -> items cut to summaries (the byte budget)


Task = tuple[FeedSpec, dict[str, Any] | None, list[Any] | None]
# (the builder's settings) -> a function rendering one task in this process
MakeRenderer = Callable[[dict[str, Any]], Callable[[Task], FeedResult]]

_render: Callable[[Task], FeedResult] | None = None


def render_feeds(
    tasks: Sequence[Task], make: MakeRenderer, settings: dict[str, Any], processes: int
) -> list[FeedResult]:
    """Render ``tasks`` in ``processes`` workers; results in the order of ``tasks``."""
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=start_method(),
        initializer=_init,
        initargs=(make, settings),
    ) as pool:
        return list(pool.map(_run, tasks))


def _init(make: MakeRenderer, settings: dict[str, Any]) -> None:
    global _render
    _render = make(settings)


def _run(task: Task) -> FeedResult:
    assert _render is not None, "worker not initialised"
    return _render(task)
