"""What ``feedpub status`` shows, gathered with read-only queries (no write lock taken).

- the daemon: running or not (the lock's holder: pid, since when);
- the last collect and build runs with their results (``runs`` table);
- per newsletter: its schedule, the next run (from the running daemon's stored jobs, else
  computed from the cron), the last edition;
- the latest editions with pending / sent / failed / bounced delivery counts;
- the store: size on disk, article and subscriber counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from feedpub import leases
from feedpub import schema as s
from feedpub.config import Config, source_name
from feedpub.digest.numbers import issue_number
from feedpub.lifecycle.rates import health as list_health
from feedpub.locks import lock_for, sqlite_path
from feedpub.slots import next_slot
from feedpub.sources.upstream_state import upstream_states
from feedpub.store import Store

JOBS_TABLE = "scheduler_jobs"  # feedpub.scheduler.engine.JOBS_TABLE (read here without APScheduler)
# Delivery ledger statuses (schema.deliveries.status) reported by name, and "cancelled"
# (the subscriber left before delivery: never sent, not owed); the rest are pending.
FINAL_DELIVERY = ("sent", "failed", "bounced", "cancelled")


@dataclass
class RunInfo:
    kind: str
    started: datetime
    finished: datetime | None
    ok: bool | None
    summary: dict[str, Any]


@dataclass
class EditionInfo:
    id: int
    newsletter: str
    number: int
    slot: str
    status: str
    created: datetime
    finished: datetime | None
    articles: int
    recipients: int
    pending: int = 0
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    issue: int | None = None  # the "No." readers see (digest list/status use it); None: skipped


@dataclass
class NewsletterInfo:
    slug: str
    title: str
    schedule: str
    timezone: str
    next_run: datetime | None
    next_run_from: str  # "daemon" (stored job) or "cron" (computed; daemon not running)
    last_edition: EditionInfo | None


@dataclass
class StoreInfo:
    url: str  # password hidden
    size_bytes: int | None
    articles: int
    published: int
    subscribers: int
    active_subscribers: int


@dataclass
class DaemonInfo:
    running: bool
    pid: int | None = None
    since: str | None = None
    lock: str | None = None
    # PostgreSQL, several instances: who leads (the ``leader`` lease); None on SQLite
    leader: LeaderInfo | None = None


@dataclass
class LeaderInfo:
    instance: str
    host: str
    pid: int
    since: str | None
    expires: str | None
    token: int


@dataclass
class SourceInfo:
    name: str
    status: str  # from the last collect: ok / not-modified / disabled / error; "-" if never
    error: str | None = None
    disabled: str | None = None  # why and since when (HTTP 410)
    moved_to: str | None = None  # permanent redirect target while the config says otherwise


@dataclass
class Status:
    now: datetime
    daemon: DaemonInfo
    last_collect: RunInfo | None
    last_build: RunInfo | None
    newsletters: list[NewsletterInfo]
    editions: list[EditionInfo]
    store: StoreInfo
    generation: int
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceInfo] = field(default_factory=list)
    # bounce and complaint rates per newsletter and edition (feedpub.lifecycle.rates)
    health: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def conv(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        out: dict[str, Any] = conv(asdict(self))
        return out


def gather_status(config: Config, store: Store, now: datetime, *, editions: int = 10) -> Status:
    daemon = daemon_info(config, store, now)
    warnings: list[str] = []
    with store.read() as conn:
        last_collect = _last_run(conn, "collect")
        last_build = _last_run(conn, "build")
        recent = _editions(conn, limit=editions)
        stored_runs = _stored_next_runs(conn)
        newsletters = []
        for n in config.newsletters:
            last = _editions(conn, limit=1, newsletter=n.slug)
            job_next = stored_runs.get(f"newsletter:{n.slug}")
            nxt: datetime | None
            if daemon.running and job_next is not None:
                nxt, src = job_next, "daemon"
            else:
                nxt, src = next_slot(n.schedule, n.timezone, now), "cron"
            newsletters.append(
                NewsletterInfo(
                    n.slug,
                    n.title,
                    n.schedule,
                    n.timezone,
                    nxt,
                    src,
                    last[0] if last else None,
                )
            )
        info = _store_info(conn, config, store)
        generation = store.generation(conn)
        sources = _sources(conn, config, last_collect)
        health, health_warnings = list_health(conn, config, now, [e.id for e in recent])
    configured = {n.slug for n in config.newsletters}
    for e in recent:
        if e.newsletter not in configured:
            warnings.append(f"edition {e.newsletter} #{e.number}: newsletter no longer in config")
    warnings.extend(health_warnings)
    return Status(
        now,
        daemon,
        last_collect,
        last_build,
        newsletters,
        recent,
        info,
        generation,
        warnings,
        sources,
        health,
    )


def _sources(conn: sa.Connection, config: Config, last_collect: RunInfo | None) -> list[SourceInfo]:
    """Each configured source with its last collect result and remembered upstream state."""
    last = {}
    if last_collect is not None:
        for item in last_collect.summary.get("sources", []) or []:
            if isinstance(item, dict) and "name" in item:
                last[str(item["name"])] = item
    upstream = {u.source: u for u in upstream_states(conn)}
    out = []
    for cfg in config.sources:
        name = source_name(cfg)
        seen = last.get(name, {})
        up = upstream.get(name)
        out.append(
            SourceInfo(
                name,
                str(seen.get("status", "-")),
                seen.get("error"),
                up.disabled if up else None,
                up.moved_to if up and up.moved_from else None,
            )
        )
    return out


def daemon_info(config: Config, store: Store, now: datetime | None = None) -> DaemonInfo:
    if not store.is_sqlite and now is not None:
        return _leader_info(store, now)
    try:
        holder = lock_for(config.store_url, "daemon", store.engine).holder()
    except Exception:  # no lock implementation for this backend: unknown, say not running
        return DaemonInfo(False)
    if holder is None:
        return DaemonInfo(False)
    pid = holder.get("pid", holder.get("backend_pid"))
    return DaemonInfo(
        True,
        int(pid) if pid is not None else None,
        _utc_z(holder.get("started")),
        holder.get("lock"),
    )


def _leader_info(store: Store, now: datetime) -> DaemonInfo:
    """Several ``feedpub run`` may share a PostgreSQL store: the running one that matters is
    the leader, read from the ``leader`` lease (held = not released, not expired)."""
    try:
        with store.read() as conn:
            row = leases.current(conn, "leader")
    except sa.exc.SQLAlchemyError:  # an old store without the table: nobody leads
        return DaemonInfo(False)
    if row is None or not row.held(now) or row.holder is None:
        return DaemonInfo(False, lock="lease:leader")
    info = LeaderInfo(
        row.holder, row.host, row.pid, _utc_z(row.since), _utc_z(row.expires), row.token
    )
    return DaemonInfo(True, row.pid, info.since, "lease:leader", info)


def _utc_z(value: Any) -> str | None:
    """The lock file's start time as UTC ISO 8601 with ``Z``, like every time in status."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _last_run(conn: sa.Connection, kind: str) -> RunInfo | None:
    r = conn.execute(
        sa.select(s.runs).where(s.runs.c.kind == kind).order_by(s.runs.c.id.desc()).limit(1)
    ).first()
    if r is None:
        return None
    return RunInfo(r.kind, r.started, r.finished, r.ok, dict(r.summary or {}))


def _editions(
    conn: sa.Connection, *, limit: int, newsletter: str | None = None
) -> list[EditionInfo]:
    e = s.editions
    q = sa.select(e).order_by(e.c.created.desc(), e.c.id.desc()).limit(limit)
    if newsletter is not None:
        q = q.where(e.c.newsletter == newsletter)
    rows = conn.execute(q).all()
    if not rows:
        return []
    counts: dict[int, dict[str, int]] = {}
    d = s.deliveries
    for r in conn.execute(
        sa.select(d.c.edition_id, d.c.status, sa.func.count())
        .where(d.c.edition_id.in_([r.id for r in rows]))
        .group_by(d.c.edition_id, d.c.status)
    ):
        counts.setdefault(r[0], {})[r[1]] = int(r[2])
    out = []
    for r in rows:
        c = counts.get(r.id, {})
        out.append(
            EditionInfo(
                id=r.id,
                newsletter=r.newsletter,
                number=r.number,
                slot=r.slot,
                status=r.status,
                created=r.created,
                finished=r.finished,
                articles=r.article_count,
                recipients=r.recipient_count,
                pending=sum(v for k, v in c.items() if k not in FINAL_DELIVERY),
                sent=c.get("sent", 0),
                failed=c.get("failed", 0),
                bounced=c.get("bounced", 0),
                issue=None if r.status == "skipped" else issue_number(conn, r.newsletter, r.number),
            )
        )
    return out


def _stored_next_runs(conn: sa.Connection) -> dict[str, datetime]:
    """Next run times the daemon stored (APScheduler keeps UTC epoch seconds)."""
    jobs = sa.table(JOBS_TABLE, sa.column("id"), sa.column("next_run_time"))
    if not sa.inspect(conn).has_table(JOBS_TABLE):
        return {}
    return {
        r.id: datetime.fromtimestamp(r.next_run_time, UTC)
        for r in conn.execute(sa.select(jobs.c.id, jobs.c.next_run_time))
        if r.next_run_time is not None
    }


def _store_info(conn: sa.Connection, config: Config, store: Store) -> StoreInfo:
    size: int | None = None
    db = sqlite_path(config.store_url)
    if db is not None:
        size = sum(
            p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()
        )
    elif conn.dialect.name == "postgresql":
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    a, sub = s.articles, s.subscribers
    articles, published = _counts(conn, a, a.c.status == "published")
    subscribers, active = _counts(conn, sub, sub.c.status == "active")
    url = sa.engine.make_url(store.url).render_as_string(hide_password=True)
    return StoreInfo(url, size, articles, published, subscribers, active)


def _counts(conn: sa.Connection, table: sa.Table, cond: sa.ColumnElement[bool]) -> tuple[int, int]:
    """The table's rows, and those matching ``cond``. PostgreSQL: one pass over the table
    (``count(*) FILTER``; each count is a scan of its own there). SQLite: two counts, each
    answered from an index, which a single pass over the table's wide rows is not."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.count().filter(cond)).select_from(table)
        ).one()
        return int(row[0]), int(row[1])
    total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0
    matching = conn.execute(sa.select(sa.func.count()).select_from(table).where(cond)).scalar()
    return int(total), int(matching or 0)
