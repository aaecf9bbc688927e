"""Pure scheduling decisions: desired jobs, reconciliation, catch-up after downtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedpub.errors import ConfigError
from feedpub.scheduler.jobs import (
    COLLECT_JOB_ID,
    EditionState,
    JobSpec,
    decide_catch_up,
    desired_jobs,
    newsletter_job_id,
    parse_slot_key,
    reconcile,
    slot_to_send,
)
from feedpub.slots import slot_key
from tests.conftest import Newsroom

DAILY = "0 7 * * *"
LONDON = "Europe/London"
GRACE = timedelta(hours=6)
WINDOW = timedelta(days=2)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def catch_up(now: datetime, editions: list[EditionState], since: datetime | None, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "newsletter": "daily",
        "schedule": DAILY,
        "tz": LONDON,
        "grace": GRACE,
        "now": now,
        "editions": editions,
        "scheduled_since": since,
        "resume_window": WINDOW,
    }
    args.update(kw)
    return decide_catch_up(**args)  # type: ignore[arg-type]


def sent(y: int, mo: int, d: int, h: int = 0) -> EditionState:
    return EditionState(utc(y, mo, d, h), "sent")


# ---- desired jobs and reconciliation -------------------------------------------------


def test_desired_jobs_one_collect_and_one_per_newsletter(newsroom: Newsroom) -> None:
    newsroom.set_config(
        """
        [[newsletters]]
        slug = "weekly"
        title = "Weekly"
        from = "T <t@news.example>"
        schedule = "0 8 * * MON"
        timezone = "America/New_York"
        misfire_grace = "PT1H"

        [schedule]
        collect_every = 1
        misfire_grace = "PT3H"
        """
    )
    jobs = {j.id: j for j in desired_jobs(newsroom.config())}
    assert set(jobs) == {COLLECT_JOB_ID, "lifecycle", "newsletter:daily", "newsletter:weekly"}
    assert jobs["lifecycle"].every == timedelta(seconds=30)  # [signup] queue_every
    assert jobs[COLLECT_JOB_ID].every == timedelta(seconds=1)
    assert jobs["newsletter:daily"].grace == timedelta(hours=3)  # [schedule] default
    assert jobs["newsletter:weekly"].grace == timedelta(hours=1)  # its own
    assert jobs["newsletter:weekly"].timezone == "America/New_York"
    assert "0 8 * * MON" in jobs["newsletter:weekly"].fingerprint


def test_collect_every_below_a_second_is_a_config_error(newsroom: Newsroom) -> None:
    newsroom.set_config("[schedule]\ncollect_every = 0\n")
    with pytest.raises(ConfigError, match=r"schedule.collect_every: must be at least 1 second"):
        newsroom.config()


def _nl(slug: str, schedule: str = DAILY, tz: str = LONDON) -> JobSpec:
    return JobSpec(newsletter_job_id(slug), "newsletter", slug, schedule, tz, None, GRACE)


def test_reconcile_adds_removes_and_reschedules() -> None:
    collect = JobSpec(COLLECT_JOB_ID, "collect", every=timedelta(minutes=5))
    stored = {
        COLLECT_JOB_ID: collect.fingerprint,
        "newsletter:daily": _nl("daily").fingerprint,
        "newsletter:gone": _nl("gone").fingerprint,
        "newsletter:moved": _nl("moved", "0 9 * * *").fingerprint,
    }
    desired = [collect, _nl("daily"), _nl("moved", "0 10 * * *"), _nl("new")]
    plan = reconcile(desired, stored)
    assert [j.id for j in plan.add] == ["newsletter:new"]
    assert [j.id for j in plan.replace] == ["newsletter:moved"]
    assert plan.remove == ("newsletter:gone",)
    assert {j.id for j in plan.keep} == {COLLECT_JOB_ID, "newsletter:daily"}
    assert plan.changed
    # a time zone change alone is a reschedule too
    plan = reconcile(
        [_nl("daily", tz="Asia/Colombo")], {"newsletter:daily": _nl("daily").fingerprint}
    )
    assert [j.id for j in plan.replace] == ["newsletter:daily"]
    # nothing changed
    same = reconcile(desired, {j.id: j.fingerprint for j in desired})
    assert not same.changed and len(same.keep) == 4


# ---- slots -----------------------------------------------------------------------------


def test_parse_slot_key_roundtrip_and_manual_keys() -> None:
    slot = utc(2026, 11, 26, 7)
    assert parse_slot_key(slot_key(slot)) == slot
    assert parse_slot_key("manual-20261126T131400Z") is None


def test_slot_to_send_is_the_fire_time_unless_later_than_grace() -> None:
    assert slot_to_send(DAILY, LONDON, GRACE, utc(2026, 11, 26, 7, 0)) == utc(2026, 11, 26, 7)
    assert slot_to_send(DAILY, LONDON, GRACE, utc(2026, 11, 26, 12, 59)) == utc(2026, 11, 26, 7)
    assert slot_to_send(DAILY, LONDON, GRACE, utc(2026, 11, 26, 13, 1)) is None


# ---- catch-up after downtime -----------------------------------------------------------


def test_missed_slot_within_grace_is_sent_once() -> None:
    # down from yesterday 08:00 to today 09:00; yesterday's 07:00 edition was sent
    c = catch_up(utc(2026, 11, 26, 9), [sent(2026, 11, 25, 7)], utc(2026, 11, 1))
    assert c.send == utc(2026, 11, 26, 7)
    assert c.skipped == () and c.skipped_count == 0 and c.resume == ()


def test_missed_slot_beyond_grace_is_skipped_and_reported() -> None:
    c = catch_up(utc(2026, 11, 26, 13, 30), [sent(2026, 11, 25, 7)], utc(2026, 11, 1))
    assert c.send is None
    assert c.skipped == (utc(2026, 11, 26, 7),) and c.skipped_count == 1


def test_long_downtime_sends_only_newest_slot_within_grace() -> None:
    hourly = "0 * * * *"
    c = catch_up(
        utc(2026, 11, 26, 9, 10),
        [sent(2026, 11, 25, 20)],
        utc(2026, 11, 1),
        schedule=hourly,
    )
    assert c.send == utc(2026, 11, 26, 9)
    # 21:00 .. 08:00 missed (12 slots), all skipped: older than grace or superseded
    assert c.skipped_count == 12
    assert c.skipped[0] == utc(2026, 11, 25, 21) and c.skipped[-1] == utc(2026, 11, 26, 8)
    assert c.send not in c.skipped


def test_grace_zero_never_catches_up() -> None:
    c = catch_up(
        utc(2026, 11, 26, 7, 1), [sent(2026, 11, 25, 7)], utc(2026, 11, 1), grace=timedelta(0)
    )
    assert c.send is None and c.skipped_count == 1


def test_already_sent_slot_is_not_sent_again() -> None:
    # restart after the slot was handled (by the daemon or a manual `digest send`)
    c = catch_up(utc(2026, 11, 26, 9), [sent(2026, 11, 26, 7)], utc(2026, 11, 1))
    assert c.send is None and c.skipped_count == 0


def test_newsletter_never_scheduled_before_misses_nothing() -> None:
    c = catch_up(utc(2026, 11, 26, 9), [], None)
    assert c.send is None and c.skipped_count == 0
    # scheduled since after today's slot: nothing missed either
    c = catch_up(utc(2026, 11, 26, 9), [], utc(2026, 11, 26, 8))
    assert c.send is None


def test_scheduled_but_never_sent_catches_up_from_since() -> None:
    c = catch_up(utc(2026, 11, 26, 9), [], utc(2026, 11, 24, 12))
    assert c.send == utc(2026, 11, 26, 7)
    assert c.skipped == (utc(2026, 11, 25, 7),)


def test_unfinished_edition_is_resumed_within_window() -> None:
    eds = [
        sent(2026, 11, 24, 7),
        EditionState(utc(2026, 11, 25, 7), "sending"),  # crashed mid-send
    ]
    c = catch_up(utc(2026, 11, 26, 6), eds, utc(2026, 11, 1))
    assert c.resume == (utc(2026, 11, 25, 7),)
    assert c.send is None  # today's slot is not due yet
    too_late = catch_up(utc(2026, 11, 28, 8), eds, utc(2026, 11, 1))
    assert too_late.resume == ()


def test_catch_up_across_dst_uses_local_slot_time() -> None:
    # down over the London spring change: today's 07:00 BST slot is 06:00 UTC
    c = catch_up(utc(2026, 3, 29, 8), [sent(2026, 3, 28, 7)], utc(2026, 3, 1))
    assert c.send == utc(2026, 3, 29, 6)
    ny = catch_up(
        utc(2026, 11, 1, 13),
        [EditionState(utc(2026, 10, 31, 11), "sent")],
        utc(2026, 10, 1),
        tz="America/New_York",
    )
    assert ny.send == utc(2026, 11, 1, 12)  # 07:00 EST after the fall-back


def test_very_long_downtime_counts_a_bounded_number_of_slots() -> None:
    c = catch_up(
        utc(2026, 11, 26, 9),
        [sent(2025, 1, 1, 7)],
        utc(2025, 1, 1),
        schedule="* * * * *",
    )
    assert c.send == utc(2026, 11, 26, 9)
    assert c.skipped_truncated  # a year of minutes is not enumerated
    assert len(c.skipped) == 20
    assert c.skipped_count >= 31 * 24 * 60
