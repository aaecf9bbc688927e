"""Newsletter schedule slots: pure functions of (cron expression, time zone, now).

An edition is keyed by its slot, so the scheduler and a manual ``digest send`` that
land on the same slot can never both send it. Cron fields are evaluated in the
newsletter's own time zone (APScheduler's CronTrigger handles DST gaps and folds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger


def trigger(schedule: str, tz: str) -> CronTrigger:
    return CronTrigger.from_crontab(schedule, timezone=ZoneInfo(tz))


def next_slot(schedule: str, tz: str, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (aware, returned in UTC)."""
    t = trigger(schedule, tz)
    nxt: datetime | None = t.get_next_fire_time(None, after + timedelta(microseconds=1))
    return nxt.astimezone(UTC) if nxt else None


def slots_between(schedule: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Slots in (start, end], oldest first, in UTC."""
    out: list[datetime] = []
    t = trigger(schedule, tz)
    prev: datetime | None = None
    cur = start + timedelta(microseconds=1)
    while True:
        nxt: datetime | None = t.get_next_fire_time(prev, cur)
        if nxt is None or nxt > end:
            return out
        out.append(nxt.astimezone(UTC))
        prev = nxt
        cur = nxt + timedelta(microseconds=1)
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
