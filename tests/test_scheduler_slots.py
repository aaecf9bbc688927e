"""Newsletter slots across DST changes, in two zones on each side of the Atlantic.

The clock is injected (every function takes ``now``/``after``); the expected instants are
written out in UTC from the 2026 transition dates:
- Europe/London: BST starts 29 March 01:00 UTC, ends 25 October 01:00 UTC;
- America/New_York: EDT starts 8 March 07:00 UTC, ends 1 November 06:00 UTC.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from feedpub.scheduler.engine import SlotTrigger
from feedpub.slots import latest_slot, next_slot, slot_key, slots_between


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def keys(slots: list[datetime]) -> list[str]:
    return [slot_key(x) for x in slots]


@pytest.mark.parametrize(
    ("tz", "start", "end", "expected"),
    [
        # 07:00 local every day: the UTC instant moves by an hour at each change.
        (
            "Europe/London",
            utc(2026, 3, 27),
            utc(2026, 3, 31),
            ["2026-03-27T07:00Z", "2026-03-28T07:00Z", "2026-03-29T06:00Z", "2026-03-30T06:00Z"],
        ),
        (
            "Europe/London",
            utc(2026, 10, 23),
            utc(2026, 10, 27),
            ["2026-10-23T06:00Z", "2026-10-24T06:00Z", "2026-10-25T07:00Z", "2026-10-26T07:00Z"],
        ),
        (
            "America/New_York",
            utc(2026, 3, 6),
            utc(2026, 3, 10),
            ["2026-03-06T12:00Z", "2026-03-07T12:00Z", "2026-03-08T11:00Z", "2026-03-09T11:00Z"],
        ),
        (
            "America/New_York",
            utc(2026, 10, 30),
            utc(2026, 11, 3),
            ["2026-10-30T11:00Z", "2026-10-31T11:00Z", "2026-11-01T12:00Z", "2026-11-02T12:00Z"],
        ),
    ],
)
def test_daily_slot_keeps_local_time_across_dst(
    tz: str, start: datetime, end: datetime, expected: list[str]
) -> None:
    assert keys(slots_between("0 7 * * *", tz, start, end)) == expected


@pytest.mark.parametrize(
    ("schedule", "tz", "start", "end", "expected"),
    [
        # 01:30 does not exist in London on 29 March: fired once, shifted by the gap.
        (
            "30 1 * * *",
            "Europe/London",
            utc(2026, 3, 28),
            utc(2026, 3, 30, 12),
            ["2026-03-28T01:30Z", "2026-03-29T01:30Z", "2026-03-30T00:30Z"],
        ),
        # 02:30 does not exist in New York on 8 March.
        (
            "30 2 * * *",
            "America/New_York",
            utc(2026, 3, 7),
            utc(2026, 3, 9, 12),
            ["2026-03-07T07:30Z", "2026-03-08T07:30Z", "2026-03-09T06:30Z"],
        ),
    ],
)
def test_slot_in_spring_gap_fires_once_shifted(
    schedule: str, tz: str, start: datetime, end: datetime, expected: list[str]
) -> None:
    assert keys(slots_between(schedule, tz, start, end)) == expected


@pytest.mark.parametrize(
    ("tz", "day", "first"),
    [
        ("Europe/London", utc(2026, 10, 25), "2026-10-25T00:30Z"),  # 01:30 BST
        ("America/New_York", utc(2026, 11, 1), "2026-11-01T05:30Z"),  # 01:30 EDT
    ],
)
def test_repeated_wall_time_at_fall_back_fires_once(tz: str, day: datetime, first: str) -> None:
    # 01:30 happens twice that night; a daily newsletter must not go out twice.
    # (APScheduler 3.11.3's CronTrigger returns the second 01:30 forever here:
    # agronholm/apscheduler#1021 — slots.py must not inherit that.)
    got = slots_between("30 1 * * *", tz, day - timedelta(hours=1), day + timedelta(days=1))
    assert keys(got) == [first]
    # and from inside the repeated hour, the next slot is the next day's
    second_pass = datetime.fromisoformat(first.replace("Z", "+00:00")) + timedelta(
        hours=1, minutes=5
    )
    nxt = next_slot("30 1 * * *", tz, second_pass)
    assert nxt is not None and nxt - second_pass > timedelta(hours=20)


def test_hourly_schedule_through_fall_back_is_strictly_increasing() -> None:
    got = slots_between(
        "*/30 * * * *", "Europe/London", utc(2026, 10, 24, 23), utc(2026, 10, 25, 3)
    )
    assert got == sorted(set(got))
    # the first pass through 01:00-02:00 local (00:00-01:00 UTC) is kept; the repeat is not
    assert keys(got) == [
        "2026-10-24T23:30Z",
        "2026-10-25T00:00Z",
        "2026-10-25T00:30Z",
        "2026-10-25T02:00Z",
        "2026-10-25T02:30Z",
        "2026-10-25T03:00Z",
    ]


def test_latest_slot_is_at_or_before_now() -> None:
    s = latest_slot("0 7 * * *", "Europe/London", utc(2026, 3, 29, 6, 0))
    assert s == utc(2026, 3, 29, 6, 0)  # exactly at the (BST) slot
    s = latest_slot("0 7 * * *", "Europe/London", utc(2026, 3, 29, 5, 59))
    assert s == utc(2026, 3, 28, 7, 0)


def test_slot_trigger_drives_apscheduler_through_both_transitions() -> None:
    """The trigger APScheduler calls: previous fire time -> next, never stuck, never twice."""
    trig = pickle.loads(pickle.dumps(SlotTrigger("30 1 * * *", "Europe/London")))
    fired: list[datetime] = []
    prev = None
    now = utc(2026, 10, 23)
    for _ in range(5):
        nxt = trig.get_next_fire_time(prev, now)
        assert nxt is not None
        fired.append(nxt)
        prev = now = nxt
    assert keys(fired) == [
        "2026-10-23T00:30Z",
        "2026-10-24T00:30Z",
        "2026-10-25T00:30Z",
        "2026-10-26T01:30Z",
        "2026-10-27T01:30Z",
    ]
    # first computation (no previous fire time) includes a slot exactly at now
    assert trig.get_next_fire_time(None, utc(2026, 10, 26, 1, 30)) == utc(2026, 10, 26, 1, 30)
