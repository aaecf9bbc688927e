"""Per-server send rate limits: messages per second and per hour.

Pure bookkeeping: the limiter is told ``now`` (seconds on any monotonic clock) and answers
how long to wait; it never sleeps, reads a clock or locks. The SMTP messenger owns one per
server and does the locking and sleeping.

- Per second: sends are *paced*, at least ``1 / rate_per_second`` apart (no bursts, so a
  relay that counts per second never sees more than the rate, and fractional rates such as
  0.5/s mean one send every 2 s).
- Per hour: an exact sliding window; at most ``rate_per_hour`` sends in any 3,600 s. When
  the window is full the wait can be long (up to an hour): the caller decides whether to
  wait or to fail over / pause.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

HOUR = 3600.0


class SendLimiter(Protocol):
    """What the SMTP messenger asks before each send: this process's :class:`RateLimiter`
    (``local``: called under the messenger's lock) or the store-backed one every instance
    shares (``delivery.sharedrate``)."""

    local: bool

    @property
    def unlimited(self) -> bool: ...

    def reserve(self, now: float) -> tuple[float, bool]: ...


class RateLimiter:
    local = True

    def __init__(self, per_second: float | None = None, per_hour: int | None = None) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be positive")
        if per_hour is not None and per_hour <= 0:
            raise ValueError("per_hour must be positive")
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self._last: float | None = None
        self._window: deque[float] = deque()

    @property
    def unlimited(self) -> bool:
        return self.interval == 0.0 and self.per_hour is None

    def wait_time(self, now: float) -> float:
        """Seconds from ``now`` until one more send is allowed (0.0: send now)."""
        wait = 0.0
        if self.interval and self._last is not None:
            wait = max(wait, self._last + self.interval - now)
        if self.per_hour is not None:
            self._expire(now)
            if len(self._window) >= self.per_hour:
                wait = max(wait, self._window[0] + HOUR - now)
        return max(wait, 0.0)

    def record(self, now: float) -> None:
        """Count one send made at ``now``."""
        if self.interval:
            # Strict spacing from the actual send: sleep jitter can only lower the rate,
            # never let two sends closer than the interval.
            self._last = now
        if self.per_hour is not None:
            self._window.append(now)

    def seed(self, sends: list[float]) -> None:
        """Count sends made earlier (e.g. by previous runs, from the ledger) in the hourly
        window. Times on the same clock as ``now``."""
        if self.per_hour is not None:
            self._window = deque(sorted([*self._window, *sends])[-self.per_hour :])

    def try_acquire(self, now: float) -> float:
        """Record a send and return 0.0 if one is allowed now; else return the wait."""
        wait = self.wait_time(now)
        if wait == 0.0:
            self.record(now)
        return wait

    def reserve(self, now: float) -> tuple[float, bool]:
        """``(0.0, True)``: send now (counted); ``(wait, False)``: nothing counted."""
        wait = self.try_acquire(now)
        return (0.0, True) if wait == 0.0 else (wait, False)

    def _expire(self, now: float) -> None:
        while self._window and self._window[0] <= now - HOUR:
            self._window.popleft()
