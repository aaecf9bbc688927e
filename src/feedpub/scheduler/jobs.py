"""Pure scheduling decisions: which jobs should exist, which slot a firing sends, and
which missed slots to send or skip after downtime. No I/O; ``now`` is always passed in.

What must survive a restart lives in the store, not in the scheduler: an edition row is
keyed by (newsletter, slot) (``uq_editions_slot``), so "was this slot handled?" is
answered from the editions table. APScheduler's own misfire handling is only a
second line for delays while running (DESIGN.md "When one machine is outgrown":
nothing that must survive lives only in process memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from feedpub.config import Config, NewsletterConfig
from feedpub.slots import latest_slot, next_slot, slots_between
from feedpub.slots import parse_slot_key as parse_slot_key  # moved to slots; re-exported

COLLECT_JOB_ID = "collect"
LIFECYCLE_JOB_ID = "lifecycle"  # mail queue, expired sign-ups, bounce mailbox poll
NEWSLETTER_JOB_PREFIX = "newsletter:"

# Edition statuses (schema.editions.status): these are finished; the others may resume.
FINISHED_STATUSES = frozenset({"sent", "skipped"})

# How many skipped slots a catch-up lists one by one (the rest are only counted).
SKIP_LIST_LIMIT = 20
# How far back skipped slots are enumerated at all (a minutely cron over a year is 500k).
SKIP_LOOKBACK = timedelta(days=31)


def newsletter_job_id(slug: str) -> str:
    return NEWSLETTER_JOB_PREFIX + slug


def newsletter_grace(config: Config, newsletter: NewsletterConfig) -> timedelta:
    """The misfire grace of a newsletter: its own, else ``[schedule] misfire_grace``."""
    if newsletter.misfire_grace is not None:
        return newsletter.misfire_grace
    return config.schedule.misfire_grace


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job that should exist in the persistent job store."""

    id: str
    kind: Literal["collect", "newsletter", "lifecycle"]
    newsletter: str | None = None
    schedule: str | None = None  # cron, newsletter jobs
    timezone: str | None = None
    every: timedelta | None = None  # collect job
    grace: timedelta | None = None  # None: always run late (coalesced)

    @property
    def fingerprint(self) -> str:
        """Everything that, when changed in config.toml, means the stored job is stale.
        Stored as the APScheduler job's name, so it is also readable in the table."""
        grace = "none" if self.grace is None else f"{int(self.grace.total_seconds())}s"
        if self.kind in ("collect", "lifecycle"):
            assert self.every is not None
            return f"{self.kind} every={self.every.total_seconds():g}s"
        return (
            f"newsletter {self.newsletter} cron='{self.schedule}' tz={self.timezone} grace={grace}"
        )


def desired_jobs(config: Config) -> list[JobSpec]:
    """The jobs config.toml asks for: one collect+build job, one lifecycle job (the mail
    queue every ``[signup] queue_every``), one job per newsletter."""
    jobs = [
        JobSpec(COLLECT_JOB_ID, "collect", every=config.schedule.collect_every),
        JobSpec(LIFECYCLE_JOB_ID, "lifecycle", every=config.signup.queue_every),
    ]
    for n in config.newsletters:
        jobs.append(
            JobSpec(
                newsletter_job_id(n.slug),
                "newsletter",
                newsletter=n.slug,
                schedule=n.schedule,
                timezone=n.timezone,
                grace=newsletter_grace(config, n),
            )
        )
    return jobs


@dataclass(frozen=True, slots=True)
class ReconcilePlan:
    add: tuple[JobSpec, ...]  # in config, not stored
    replace: tuple[JobSpec, ...]  # stored with another schedule/zone/grace
    remove: tuple[str, ...]  # stored, no longer in config
    keep: tuple[JobSpec, ...]  # stored and unchanged

    @property
    def changed(self) -> bool:
        return bool(self.add or self.replace or self.remove)


def reconcile(desired: Iterable[JobSpec], stored: Mapping[str, str]) -> ReconcilePlan:
    """Compare the wanted jobs with the stored ones (job id -> fingerprint)."""
    add: list[JobSpec] = []
    replace: list[JobSpec] = []
    keep: list[JobSpec] = []
    wanted: set[str] = set()
    for spec in desired:
        wanted.add(spec.id)
        if spec.id not in stored:
            add.append(spec)
        elif stored[spec.id] != spec.fingerprint:
            replace.append(spec)
        else:
            keep.append(spec)
    remove = tuple(sorted(job_id for job_id in stored if job_id not in wanted))
    return ReconcilePlan(tuple(add), tuple(replace), remove, tuple(keep))


# ---- slots --------------------------------------------------------------------------


def slot_to_send(schedule: str, tz: str, grace: timedelta, now: datetime) -> datetime | None:
    """When a newsletter job fires at ``now``: the slot it sends (the latest slot at or
    before now), or None when that slot is already older than the grace window (the
    process was suspended, the worker was busy for hours...)."""
    slot = latest_slot(schedule, tz, now)
    if slot is None or now - slot > grace:
        return None
    return slot


@dataclass(frozen=True, slots=True)
class EditionState:
    """What catch-up needs to know about one stored edition."""

    slot: datetime
    status: str


@dataclass(frozen=True, slots=True)
class CatchUp:
    newsletter: str
    send: datetime | None  # the newest missed slot within grace: send it now, once
    resume: tuple[datetime, ...]  # unfinished editions (crash mid-send): resume them
    skipped: tuple[
        datetime, ...
    ] = ()  # missed slots not sent, newest SKIP_LIST_LIMIT, oldest first
    skipped_count: int = 0  # all skipped slots counted (within SKIP_LOOKBACK)
    skipped_truncated: bool = False  # there were missed slots older than SKIP_LOOKBACK too


def decide_catch_up(
    *,
    newsletter: str,
    schedule: str,
    tz: str,
    grace: timedelta,
    now: datetime,
    editions: Sequence[EditionState],
    scheduled_since: datetime | None,
    resume_window: timedelta,
) -> CatchUp:
    """Which slots a newsletter missed while nothing was running, and what to do now.

    A slot is *missed* when it lies after both the newest edition's slot and the moment
    the daemon started scheduling this newsletter (``scheduled_since``, kept in the
    store; None for a newsletter never scheduled before: nothing was missed). Of the
    missed slots, the newest one within ``grace`` of ``now`` is sent once; every other
    missed slot (older than the grace window, or superseded by a newer one) is skipped
    and reported. Editions left unfinished (frozen/sending/paused) whose slot is within
    ``resume_window`` are resumed: their ledger says who still needs the message.
    """
    resume = tuple(
        sorted(
            e.slot
            for e in editions
            if e.status not in FINISHED_STATUSES and timedelta(0) <= now - e.slot <= resume_window
        )
    )
    if scheduled_since is None:
        return CatchUp(newsletter, None, resume)
    reference = max([scheduled_since, *(e.slot for e in editions)])
    if reference >= now:
        return CatchUp(newsletter, None, resume)

    horizon = now - grace  # slots after this are still on time enough to send
    recent = slots_between(schedule, tz, max(reference, horizon), now)
    send = recent[-1] if recent else None
    old: list[datetime] = []
    truncated = False
    if reference < horizon:
        start = max(reference, horizon - SKIP_LOOKBACK)
        old = slots_between(schedule, tz, start, horizon)
        first = next_slot(schedule, tz, reference)
        truncated = start > reference and first is not None and first <= start
    skipped = [*old, *recent[:-1]]
    return CatchUp(
        newsletter,
        send,
        resume,
        tuple(skipped[-SKIP_LIST_LIMIT:]),
        len(skipped),
        truncated,
    )
