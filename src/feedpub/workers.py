"""Worker processes for the batches that use both cores (parsing a large folder,
a full feed build): how many, and how they start."""

from __future__ import annotations

import multiprocessing
import os
import threading
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
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
