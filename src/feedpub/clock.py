"""One clock for everything that decides by time.

A clock is a function of no arguments that returns an aware UTC ``datetime``. Only the
command layer (``feedpub.commands``) and the daemon read the wall clock, through
``system_clock``; everything below takes ``now`` from its caller, or a ``Clock`` when it
runs long enough for time to pass (a delivery run records when each message left). So a
test that fixes ``now`` fixes it everywhere, and the suite passes on any date.

Durations (timeouts, rate limits, lock waits) use ``time.monotonic`` where they are
measured: they never depend on the date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock, in UTC. For the command layer and the daemon only."""
    return datetime.now(UTC)


def running_from(start: datetime) -> Clock:
    """A clock that reads ``start`` now and then advances with real elapsed (monotonic)
    time: what a long operation handed one ``now`` uses to stamp what it does later."""
    if start.tzinfo is None:
        raise ValueError("running_from: start must be timezone-aware")
    origin = time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=time.monotonic() - origin)

    return clock


def fixed(at: datetime) -> Clock:
    """A clock that always reads ``at``."""
    if at.tzinfo is None:
        raise ValueError("fixed: the time must be timezone-aware")
    return lambda: at
