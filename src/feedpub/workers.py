"""Worker processes for the batches that use both cores (parsing a large folder,
a full feed build): how many, and how they start."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # multiprocessing is imported when a pool starts, not by every command
    from multiprocessing.context import BaseContext

MAX_WORKERS = 8


def workers() -> int:
    """Worker processes for a large batch: the cores this process may run on (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_WORKERS))


def start_method() -> BaseContext:
    """fork is the cheapest start, and safe while this is the only thread; with other
    threads running (the daemon, its folder watcher, other sources being fetched) a
    forked child could inherit a lock held by one of them: workers then start from a
    fresh fork server."""
    import multiprocessing

    return multiprocessing.get_context("fork" if single_threaded() else "forkserver")


def single_threaded() -> bool:
    """Only this thread runs: forking cannot copy a lock another thread holds."""
    return threading.active_count() == 1
