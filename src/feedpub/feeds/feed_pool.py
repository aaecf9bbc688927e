"""Rendering many feeds on every core: a full build (the first one, ``--force``, a
configuration change) renders every archive page of every feed. The build plans every
feed's documents first; worker processes render them, each a contiguous run of the
documents in archive order (:mod:`feedpub.feeds.render`) with its own read connection,
and the results are merged in the order of the feeds: the files, the build's record and
its report are the same as when one process renders them all (tests/test_feed_pool.py).

An incremental build touches a few documents: it stays in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from feedpub.feeds.render import DocOut, Job
from feedpub.workers import start_method
from feedpub.workers import workers as workers

# A full build renders every slot of every feed; below this many, one process does it.
MIN_SLOTS = 3000


# (the builder's settings) -> a function rendering a run of documents in this process
MakeRenderer = Callable[[dict[str, Any]], Callable[[list[Job]], list[tuple[int, DocOut]]]]

_render: Callable[[list[Job]], list[tuple[int, DocOut]]] | None = None


class Pool:
    """Worker processes for one full build. They start (fork) here, before the build
    loads its plan, so each is the size of the process before the plan."""

    def __init__(self, make: MakeRenderer, settings: dict[str, Any], processes: int) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=start_method(),
            initializer=_init,
            initargs=(make, settings),
        )
        self._pool.submit(_noop)  # with fork, every worker starts at the first submit

    def render(self, runs: Sequence[list[Job]]) -> list[tuple[int, DocOut]]:
        """Render each run of documents in a worker; (seq, result) of every document."""
        out: list[tuple[int, DocOut]] = []
        for res in self._pool.map(_run, runs):
            out.extend(res)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _noop() -> None:
    return None


def _init(make: MakeRenderer, settings: dict[str, Any]) -> None:
    global _render
    _render = make(settings)


def _run(jobs: list[Job]) -> list[tuple[int, DocOut]]:
    assert _render is not None, "worker not initialised"
    return _render(jobs)
