"""Newsletter schedule slots: pure functions of (cron expression, time zone, now).

An edition is keyed by its slot, so the scheduler and a manual ``digest send`` that
land on the same slot can never both send it. Cron fields are evaluated in the
newsletter's own time zone; DST gaps and folds are handled here (see next_slot).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger


def trigger(schedule: str, tz: str) -> CronTrigger:
    return CronTrigger.from_crontab(schedule, timezone=ZoneInfo(tz))


@lru_cache(maxsize=256)
def _wall_trigger(schedule: str) -> CronTrigger:
    # The cron fields matched against *wall-clock* time, written as if it were UTC (UTC has
    # no DST, so APScheduler's fold handling never runs: 3.11.3 returns the same fold=1 fire
    # time forever at a fall-back transition, agronholm/apscheduler#1021).
    return CronTrigger.from_crontab(schedule, timezone=UTC)


def next_slot(schedule: str, tz: str, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (aware, returned in UTC).

    DST rules (cron semantics, on the newsletter's wall clock):
    - a wall time that does not exist (spring forward gap) fires once, shifted forward
      by the gap (01:30 in a 01:00→02:00 gap fires at 02:30 new time);
    - a wall time that occurs twice (fall back) fires once, on its first occurrence.
    """
    zone = ZoneInfo(tz)
    cron = _wall_trigger(schedule)
    wall = after.astimezone(zone).replace(tzinfo=UTC, fold=0)
    for _ in range(10_000):  # a fall-back fold is at most a few hours of candidates
        w: datetime | None = cron.get_next_fire_time(None, wall + timedelta(microseconds=1))
        if w is None:
            return None
        # fold=0: the first occurrence of a repeated time; in a gap, the pre-transition offset
        # (PEP 495), i.e. shifted forward by the gap.
        real = w.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if real > after:
            return real
        wall = w
    return None  # pragma: no cover - unreachable for a valid cron expression


def slots_between(schedule: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Slots in (start, end], oldest first, in UTC; each instant at most once."""
    out: list[datetime] = []
    cur = start
    while True:
        nxt = next_slot(schedule, tz, cur)
        if nxt is None or nxt > end:
            return out
        out.append(nxt)
        cur = nxt
        if len(out) > 100_000:  # a guard, not a limit anyone should meet
            return out


def latest_slot(schedule: str, tz: str, now: datetime) -> datetime | None:
    """The most recent slot at or before ``now`` (looks back up to ~13 months)."""
    for window in (timedelta(days=1), timedelta(days=32), timedelta(days=400)):
        found = slots_between(schedule, tz, now - window, now)
        if found:
            return found[-1]
    return None


def slot_key(slot: datetime) -> str:
    """Stable text key for an edition's slot: UTC, minute precision."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def parse_slot_key(key: str) -> datetime | None:
    """The slot of an edition key written by :func:`slot_key`; None for other (manual)
    keys."""
    try:
        return datetime.strptime(key, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except ValueError:
        return None
