"""APScheduler 3.11, wrapped: the one module of ours that builds schedulers and jobs.

Quirks kept here:
- CronTrigger loops forever on the repeated hour at a DST fall-back (apscheduler#1021,
  still in 3.11.3), so newsletter jobs use :class:`SlotTrigger`, which asks
  ``feedpub.slots`` (wall-clock cron, each instant once).
- SQLAlchemyJobStore opens a transaction for every poll; on SQLite it gets its own engine
  (plain deferred transactions, WAL reads) so it never queues behind the store's
  ``BEGIN IMMEDIATE`` writers.
- Jobs are pickled into the table ``scheduler_jobs`` by reference: the callable must stay
  importable at ``feedpub.scheduler.daemon:run_job`` and take only plain arguments.
- One worker thread: feedgen switches the process-wide locale while formatting dates
  (FIELD-NOTES), and a collect never overlaps a send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feedpub.scheduler.jobs import JobSpec
from feedpub.slots import next_slot

JOBS_TABLE = "scheduler_jobs"
PERSISTENT = "default"  # job store alias: the store's database
EPHEMERAL = "memory"  # one-off jobs (the start-up catch-up), recomputed at every start


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at a newsletter's cron slots in its own time zone (``feedpub.slots``)."""

    def __init__(self, schedule: str, timezone: str) -> None:
        self.schedule = schedule
        self.timezone = timezone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time if previous_fire_time else now - timedelta(microseconds=1)
        return next_slot(self.schedule, self.timezone, after)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "schedule": self.schedule, "timezone": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.schedule = state["schedule"]
        self.timezone = state["timezone"]

    def __str__(self) -> str:
        return f"slots[cron='{self.schedule}', tz='{self.timezone}']"

    def __repr__(self) -> str:
        return f"<SlotTrigger (cron={self.schedule!r}, timezone={self.timezone!r})>"


def jobstore_engine(store_url: str, store_engine: sa.Engine) -> sa.Engine:
    if store_url.startswith("sqlite"):
        return sa.create_engine(store_url, connect_args={"timeout": 30})
    return store_engine


def make_scheduler(jobs_engine: sa.Engine) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={
            PERSISTENT: SQLAlchemyJobStore(engine=jobs_engine, tablename=JOBS_TABLE),
            EPHEMERAL: MemoryJobStore(),
        },
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone="UTC",
        logger=logging.getLogger("apscheduler.scheduler"),
    )


def stored_jobs(scheduler: BackgroundScheduler) -> dict[str, str]:
    """Persistent job id -> fingerprint (kept in the job's name)."""
    return {job.id: job.name for job in scheduler.get_jobs(jobstore=PERSISTENT)}


def stored_next_run(scheduler: BackgroundScheduler, job_id: str) -> datetime | None:
    job = scheduler.get_job(job_id, jobstore=PERSISTENT)
    if job is None:
        return None
    nrt: datetime | None = job.next_run_time
    return nrt


def put_job(
    scheduler: BackgroundScheduler,
    spec: JobSpec,
    func: Callable[..., None],
    now: datetime,
) -> datetime | None:
    """Add or replace the persistent job for ``spec``; returns its next run time."""
    trigger: BaseTrigger
    if spec.kind in ("collect", "lifecycle"):
        assert spec.every is not None
        trigger = IntervalTrigger(seconds=spec.every.total_seconds(), timezone="UTC")
        first: datetime | None = now + spec.every  # the start-up job runs the first tick
        args: tuple[str, ...] = (spec.kind,)
    else:
        assert spec.schedule and spec.timezone and spec.newsletter
        trigger = SlotTrigger(spec.schedule, spec.timezone)
        first = trigger.get_next_fire_time(None, now)
        args = ("newsletter", spec.newsletter)
    job = scheduler.add_job(
        func,
        trigger,
        args=args,
        id=spec.id,
        name=spec.fingerprint,
        jobstore=PERSISTENT,
        replace_existing=True,
        next_run_time=first,
        misfire_grace_time=None if spec.grace is None else int(spec.grace.total_seconds()),
        coalesce=True,
        max_instances=1,
    )
    return job.next_run_time  # type: ignore[no-any-return]


def skip_past_runs(scheduler: BackgroundScheduler, spec: JobSpec, now: datetime) -> datetime | None:
    """A kept job whose next run passed while nothing ran: move it to its next future run.
    Missed newsletter slots are decided by ``jobs.decide_catch_up`` from the store, not
    replayed by APScheduler."""
    job = scheduler.get_job(spec.id, jobstore=PERSISTENT)
    if job is None:
        return None
    nrt: datetime | None = job.next_run_time
    if nrt is not None and nrt <= now:
        if spec.kind in ("collect", "lifecycle"):
            assert spec.every is not None
            nrt = now + spec.every
        else:
            nrt = job.trigger.get_next_fire_time(None, now)
        job.modify(next_run_time=nrt)
    return nrt


def shutdown(scheduler: BackgroundScheduler) -> None:
    """Stop processing, wait for the running job, close the executor and job stores.

    APScheduler's own ``shutdown`` closes the executor, then its thread makes one more
    pass and fails to submit any due job ("cannot schedule new futures after shutdown")."""
    if not scheduler.running:
        return
    scheduler.pause()
    # BlockingScheduler's loop runs one more processing pass after shutdown() wakes it
    # (state is STOPPED, not PAUSED, by then): with the job stores detached it finds no
    # due job to submit to the closed executor. Detaching does not delete stored jobs.
    for alias in (PERSISTENT, EPHEMERAL):
        scheduler.remove_jobstore(alias, shutdown=True)
    scheduler.shutdown(wait=True)


def remove_job(scheduler: BackgroundScheduler, job_id: str) -> None:
    scheduler.remove_job(job_id, jobstore=PERSISTENT)


def run_once(
    scheduler: BackgroundScheduler, job_id: str, func: Callable[..., None], when: datetime
) -> None:
    scheduler.add_job(
        func,
        DateTrigger(run_date=when, timezone="UTC"),
        args=(job_id,),
        id=job_id,
        jobstore=EPHEMERAL,
        replace_existing=True,
        misfire_grace_time=None,
    )
