"""The scheduler's own state in the store (when each newsletter was first scheduled, run
rows, the editions keyed by slot) and the daemon's log fields; split from ``daemon``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.collect import CollectReport
from feedpub.digest import SendReport
from feedpub.scheduler.jobs import CatchUp, EditionState, parse_slot_key
from feedpub.slots import slot_key

log = logging.getLogger("feedpub.scheduler")

SINCE_KEY = "scheduler.since."  # meta: when the daemon first scheduled a newsletter
# One row each per tick, so these are pruned; other kinds (catch-up, digest) are rare.
PRUNED_KINDS = ("collect", "build")


# ---- store state of the scheduler ---------------------------------------------------


def scheduled_since(conn: Connection) -> dict[str, datetime]:
    rows = conn.execute(
        sa.select(s.meta.c.key, s.meta.c.value).where(s.meta.c.key.startswith(SINCE_KEY))
    )
    return {r.key[len(SINCE_KEY) :]: datetime.fromisoformat(r.value) for r in rows}


def _set_since(conn: Connection, slug: str, when: datetime) -> None:
    key = SINCE_KEY + slug
    conn.execute(sa.delete(s.meta).where(s.meta.c.key == key))
    conn.execute(sa.insert(s.meta).values(key=key, value=when.astimezone(UTC).isoformat()))


def _drop_since(conn: Connection, slug: str) -> None:
    conn.execute(sa.delete(s.meta).where(s.meta.c.key == SINCE_KEY + slug))


def prune_runs(conn: Connection, before: datetime) -> int:
    """Delete collect/build run rows started before ``before``, keeping the newest of
    each kind (what ``feedpub status`` shows). A tick writes two rows every
    ``collect_every``: 210,000 a year at the default."""
    r = s.runs
    deleted = 0
    for kind in PRUNED_KINDS:
        newest = conn.execute(sa.select(sa.func.max(r.c.id)).where(r.c.kind == kind)).scalar()
        if newest is None:
            continue
        res = conn.execute(
            sa.delete(r).where(r.c.kind == kind, r.c.started < before, r.c.id < newest)
        )
        deleted += res.rowcount or 0
    return deleted


def edition_states(conn: Connection, newsletter: str) -> list[EditionState]:
    """Editions of a newsletter keyed by a schedule slot (manual keys are ignored)."""
    out = []
    q = sa.select(s.editions.c.slot, s.editions.c.status).where(
        s.editions.c.newsletter == newsletter
    )
    for r in conn.execute(q):
        slot = parse_slot_key(r.slot)
        if slot is not None:
            out.append(EditionState(slot, r.status))
    return out


# ---- log fields --------------------------------------------------------------


def _log_collect_problems(report: CollectReport) -> None:
    """Name what ``feedpub collect`` prints on the console: under the daemon the log is
    all an operator sees (a failing or disabled source, each rejected input, warnings)."""
    for src in report.sources:
        if src.status in ("error", "disabled"):
            log.warning(
                "source failed" if src.status == "error" else "source disabled",
                extra={"source": src.name, "status": src.status, "error": src.error or ""},
            )
    for r in report.rejected:
        log.warning("input rejected", extra={"input": str(r)})
    for w in report.warnings:
        log.warning("collect warning", extra={"warning": w})


def _summary(report: SendReport) -> dict[str, Any]:
    """A SendReport as log fields (prefixed: ``created`` is a LogRecord attribute)."""
    out: dict[str, Any] = {}
    for name in (
        "edition_id",
        "number",
        "status",
        "created",
        "sent",
        "failed",
        "bounced",
        "remaining",
    ):
        v = getattr(report, name, None)
        key = name if name.startswith("edition") else f"edition_{name}"
        if isinstance(v, (int, str, bool)):
            out[key] = v
        elif isinstance(v, (list, tuple)):
            out[key] = len(v)
    return out


def _key(slot: datetime | str) -> str:
    return slot if isinstance(slot, str) else slot_key(slot)


def _iso(d: datetime | None) -> str:
    return "none" if d is None else d.astimezone(UTC).isoformat(timespec="seconds")


def redact_url(url: str) -> str:
    """A store URL fit for logs: any password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable url)"


def log_send(report: SendReport, slug: str, key: str, reason: str, *, interrupted: bool) -> None:
    """What the daemon logs after sending (or resuming) an edition."""
    if interrupted and report.remaining:
        log.info(
            "send interrupted by shutdown; the ledger resumes it at the next start",
            extra={"newsletter": slug, "slot": key, **_summary(report)},
        )
    elif report.status == "paused":  # no SMTP server usable: nothing went out
        log.warning(
            "newsletter paused: no SMTP server usable; retried at every tick",
            extra={"newsletter": slug, "slot": key, "reason": reason, **_summary(report)},
        )
    else:
        log.info(
            "newsletter sent",
            extra={"newsletter": slug, "slot": key, "reason": reason, **_summary(report)},
        )


def log_skipped(c: CatchUp) -> None:
    if c.skipped_count:
        log.warning(
            "missed slots skipped",
            extra={
                "newsletter": c.newsletter,
                "count": c.skipped_count,
                "slots": ",".join(slot_key(x) for x in c.skipped),
                "older_not_listed": c.skipped_truncated,
                "reason": "older than the misfire grace window or superseded by a newer slot",
            },
        )


def c_row(c: CatchUp) -> dict[str, Any]:
    """The ``runs`` row details of a catch-up."""
    return {
        "newsletter": c.newsletter,
        "sent": slot_key(c.send) if c.send else None,
        "resumed": [slot_key(x) for x in c.resume],
        "skipped": [slot_key(x) for x in c.skipped],
        "skipped_count": c.skipped_count,
    }
