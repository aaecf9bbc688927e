"""The daemon on a real newsroom (SQLite file, content folder, outbox), with an injected
clock: stored jobs and reconciliation, catch-up within and beyond the grace window,
restart without duplicates, the scheduler and a manual send racing for one slot, a
shutdown in the middle of a send; what its logs name (the failing source, the rejected
file, a paused edition), and refusing to start without the secrets its jobs need."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.collect import collect
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.errors import ConfigError, LockedError
from feedpub.locks import lock_for
from feedpub.scheduler.daemon import Daemon, run_job, scheduled_since
from feedpub.scheduler.engine import JOBS_TABLE
from feedpub.store import Store
from tests.conftest import BASE_CONFIG, LogRecords, Newsroom

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # first start of the daemon
SLOT = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 07:00 Europe/London (GMT)
NOW = SLOT + timedelta(minutes=5)

CONFIG = BASE_CONFIG.replace(
    'postal_address = "1 Test Street, Testville"',
    'postal_address = "1 Test Street, Testville"\nlookback = "P30D"',
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def room(newsroom: Newsroom) -> Newsroom:
    newsroom.set_config(base=CONFIG)
    newsroom.write(
        "kyiv.md",
        "---\ntitle: Kyiv schools move underground\ndate: 2026-11-20 09:00\n"
        "beat: world\n---\nBody.\n",
    )
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=T0)
    with store.begin() as conn:
        for i in range(3):
            subs.add(cfg, conn, f"reader{i}@example.com", newsletters=["daily"], now=T0)
    store.close()
    return newsroom


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.lock.holder() is not None and not d.stopping.is_set():
            d.stop(timeout=10)
        d.store.close()


def start(room: Newsroom, daemons: list[Daemon], now: datetime) -> Daemon:
    d = Daemon(room.config(), room.store(), clock=Clock(now))
    d.start(paused=True)
    daemons.append(d)
    return d


def outbox_files(room: Newsroom) -> list[Path]:
    return sorted((room.root / "outbox").rglob("*.eml"))


def editions(store: Store) -> list[tuple[str, str]]:
    with store.read() as conn:
        return [
            (r.slot, r.status)
            for r in conn.execute(sa.select(s.editions).order_by(s.editions.c.id))
        ]


def ledger(store: Store) -> list[tuple[str, str]]:
    with store.read() as conn:
        return sorted((r.email, r.status) for r in conn.execute(sa.select(s.deliveries)))


def stored_jobs(store: Store) -> dict[str, float | None]:
    with store.read() as conn:
        rows = conn.execute(sa.text(f"SELECT id, next_run_time FROM {JOBS_TABLE}")).all()
    return {r[0]: r[1] for r in rows}


# ---- jobs in the store -----------------------------------------------------------------


def test_start_stores_jobs_and_refuses_a_second_daemon(
    room: Newsroom, daemons: list[Daemon]
) -> None:
    d = start(room, daemons, T0)
    jobs = stored_jobs(d.store)
    assert set(jobs) == {"collect", "lifecycle", "newsletter:daily"}
    nxt = jobs["newsletter:daily"]
    assert nxt is not None and datetime.fromtimestamp(nxt, UTC) == datetime(
        2026, 11, 25, 7, tzinfo=UTC
    )
    with d.store.read() as conn:
        assert scheduled_since(conn) == {"daily": T0}

    other = Daemon(room.config(), room.store(), clock=Clock(T0))
    with pytest.raises(LockedError, match="already running"):
        other.start(paused=True)
    other.store.close()
    assert d.stop(timeout=10)
    assert d.lock.holder() is None


def test_config_changes_are_reconciled_at_start(room: Newsroom, daemons: list[Daemon]) -> None:
    d = start(room, daemons, T0)
    assert d.stop(timeout=10)
    room.set_config(
        """
        [[newsletters]]
        slug = "weekly"
        title = "Weekly"
        from = "T <t@news.example>"
        schedule = "0 8 * * MON"
        timezone = "America/New_York"
        """,
        base=CONFIG.replace('schedule = "0 7 * * *"', 'schedule = "30 6 * * *"'),
    )
    d2 = start(room, daemons, T0 + timedelta(hours=1))
    assert d2.plan is not None
    assert [j.id for j in d2.plan.add] == ["newsletter:weekly"]
    assert [j.id for j in d2.plan.replace] == ["newsletter:daily"]
    jobs = stored_jobs(d2.store)
    assert datetime.fromtimestamp(jobs["newsletter:daily"] or 0, UTC) == datetime(
        2026, 11, 25, 6, 30, tzinfo=UTC
    )
    # Monday 30 Nov 08:00 EST
    assert datetime.fromtimestamp(jobs["newsletter:weekly"] or 0, UTC) == datetime(
        2026, 11, 30, 13, tzinfo=UTC
    )
    assert d2.stop(timeout=10)

    no_newsletters = CONFIG[: CONFIG.index("[[newsletters]]")] + CONFIG[CONFIG.index("[secrets]") :]
    room.set_config(base=no_newsletters)
    d3 = start(room, daemons, T0 + timedelta(hours=2))
    assert d3.plan is not None and set(d3.plan.remove) == {"newsletter:daily", "newsletter:weekly"}
    assert set(stored_jobs(d3.store)) == {"collect", "lifecycle"}
    with d3.store.read() as conn:
        assert scheduled_since(conn) == {}


def test_stored_newsletter_jobs_follow_their_zone_across_dst(
    room: Newsroom, daemons: list[Daemon]
) -> None:
    room.set_config(
        """
        [[newsletters]]
        slug = "morning-ny"
        title = "Morning NY"
        from = "T <t@news.example>"
        schedule = "0 7 * * *"
        timezone = "America/New_York"
        """,
        base=CONFIG,
    )
    # Saturday 28 March 2026 noon UTC: New York already on EDT, London changes tonight.
    d = start(room, daemons, datetime(2026, 3, 28, 12, tzinfo=UTC))
    runs = d.next_runs()
    assert runs["newsletter:daily"] == datetime(2026, 3, 29, 6, tzinfo=UTC)  # 07:00 BST
    assert runs["newsletter:morning-ny"] == datetime(2026, 3, 29, 11, tzinfo=UTC)  # 07:00 EDT
    assert d.stop(timeout=10)
    # Saturday 24 October: London changes back tonight, New York a week later.
    d2 = start(room, daemons, datetime(2026, 10, 24, 12, tzinfo=UTC))
    runs = d2.next_runs()
    assert runs["newsletter:daily"] == datetime(2026, 10, 25, 7, tzinfo=UTC)  # 07:00 GMT
    assert runs["newsletter:morning-ny"] == datetime(2026, 10, 25, 11, tzinfo=UTC)  # EDT


def test_the_stored_callable_runs_the_newsletter_of_its_slot(
    room: Newsroom, daemons: list[Daemon]
) -> None:
    # what APScheduler calls (by reference) when the 07:00 slot fires, a second late
    d = start(room, daemons, SLOT + timedelta(seconds=1))
    run_job("newsletter", "daily")
    assert editions(d.store) == [("2026-11-26T07:00Z", "sent")]
    assert len(outbox_files(room)) == 3


# ---- catch-up ----------------------------------------------------------------------------


def test_missed_slot_within_grace_is_sent_once_and_restart_sends_nothing_more(
    room: Newsroom, daemons: list[Daemon]
) -> None:
    d = start(room, daemons, T0)  # scheduled since T0, then down until after today's slot
    assert d.stop(timeout=10)

    at = SLOT + timedelta(hours=2)
    d2 = start(room, daemons, at)
    d2.startup(at)
    assert editions(d2.store) == [("2026-11-26T07:00Z", "sent")]
    assert len(outbox_files(room)) == 3
    assert {st for _, st in ledger(d2.store)} == {"sent"}
    assert d2.stop(timeout=10)

    # restart ten minutes later, and the job firing late for the same slot: no duplicates
    later = at + timedelta(minutes=10)
    d3 = start(room, daemons, later)
    d3.startup(later)
    d3.newsletter_job("daily", later)
    assert editions(d3.store) == [("2026-11-26T07:00Z", "sent")]
    assert len(outbox_files(room)) == 3


def test_missed_slot_beyond_grace_is_skipped_and_logged(
    room: Newsroom, daemons: list[Daemon], scheduler_log: LogRecords
) -> None:
    d = start(room, daemons, T0)
    assert d.stop(timeout=10)
    at = SLOT + timedelta(hours=7)  # grace is 6 hours by default
    d2 = start(room, daemons, at)
    d2.startup(at)
    assert editions(d2.store) == []
    assert outbox_files(room) == []
    skipped = [r for r in scheduler_log.records if r.getMessage() == "missed slots skipped"]
    assert len(skipped) == 1
    # both the 25th and the 26th were missed since T0; neither is sent
    assert skipped[0].__dict__["slots"] == "2026-11-25T07:00Z,2026-11-26T07:00Z"
    run = d2.store.last_run("catch-up")
    assert (
        run is not None and run["summary"]["skipped_count"] == 2 and run["summary"]["sent"] is None
    )


def test_first_start_does_not_send_old_slots(room: Newsroom, daemons: list[Daemon]) -> None:
    at = SLOT + timedelta(minutes=30)  # the daemon never ran before: nothing was "missed"
    d = start(room, daemons, at)
    d.startup(at)
    assert editions(d.store) == []


# ---- races and shutdown ---------------------------------------------------------------------


def test_scheduler_and_manual_send_racing_for_one_slot_send_once(
    room: Newsroom, daemons: list[Daemon]
) -> None:
    d = start(room, daemons, SLOT)
    manual_store = room.store()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def scheduler() -> None:
        barrier.wait()
        d.newsletter_job("daily", SLOT + timedelta(seconds=1))

    def manual() -> None:
        barrier.wait()
        try:  # `feedpub digest send daily`: defaults to the latest slot, the same one
            send_newsletter(room.config(), manual_store, "daily", now=SLOT + timedelta(seconds=2))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=scheduler), threading.Thread(target=manual)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    manual_store.close()
    assert errors == []
    assert [slot for slot, _ in editions(d.store)] == ["2026-11-26T07:00Z"]
    assert ledger(d.store) == [(f"reader{i}@example.com", "sent") for i in range(3)]
    assert len(outbox_files(room)) == 3


def test_shutdown_mid_send_stops_between_messages_and_next_start_resumes(
    room: Newsroom, daemons: list[Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = start(room, daemons, SLOT)
    real_send = OutboxMessenger.send

    def send_then_sigterm(self: OutboxMessenger, message: object) -> None:
        real_send(self, message)  # type: ignore[arg-type]
        d.stopping.set()  # SIGTERM arrives while the first message is in flight

    monkeypatch.setattr(OutboxMessenger, "send", send_then_sigterm)
    d.newsletter_job("daily", SLOT)
    monkeypatch.setattr(OutboxMessenger, "send", real_send)
    assert len(outbox_files(room)) == 1
    assert sorted(st for _, st in ledger(d.store)) == ["queued", "queued", "sent"]
    assert editions(d.store) == [("2026-11-26T07:00Z", "sending")]
    assert d.stop(timeout=10)

    at = SLOT + timedelta(minutes=5)
    d2 = start(room, daemons, at)
    d2.startup(at)
    assert {st for _, st in ledger(d2.store)} == {"sent"}
    assert editions(d2.store) == [("2026-11-26T07:00Z", "sent")]
    files = outbox_files(room)
    assert len(files) == 3 and len({f.name for f in files}) == 3


def test_tick_prunes_old_collect_and_build_runs(room: Newsroom, daemons: list[Daemon]) -> None:
    d = start(room, daemons, SLOT)
    old = SLOT - timedelta(days=40)
    for kind in ("collect", "build", "catch-up"):
        d.store.record_run(kind, old, old, True, {"old": True})
    d.tick(SLOT)
    with d.store.read() as conn:
        rows = conn.execute(sa.select(s.runs.c.kind, s.runs.c.started)).all()
    kinds = sorted(k for k, started in rows if started == old)
    assert kinds == ["catch-up"]  # old collect/build rows gone, other kinds kept
    assert d.store.last_run("collect") is not None and d.store.last_run("build") is not None


def test_an_edition_left_unfinished_after_its_last_message_is_finished(
    room: Newsroom, daemons: list[Daemon]
) -> None:
    """The sender died after its last message was recorded sent but before the edition was
    marked sent: no ledger row is due, yet the daemon must not leave it 'sending' forever."""
    d = start(room, daemons, SLOT)
    d.newsletter_job("daily", SLOT)
    assert editions(d.store) == [("2026-11-26T07:00Z", "sent")]
    with d.store.begin() as conn:
        conn.execute(sa.update(s.editions).values(status="sending", finished=None))
    at = SLOT + timedelta(minutes=5)
    assert d.due_editions(at) == [("daily", SLOT)]
    d.tick(at)
    assert editions(d.store) == [("2026-11-26T07:00Z", "sent")]
    assert len(outbox_files(room)) == 3  # nobody mailed twice


# ---- what the logs name -----------------------------------------------------------------


def test_daemon_tick_logs_which_source_failed_and_which_file_was_rejected(
    newsroom: Newsroom, scheduler_log: LogRecords
) -> None:
    # Under `feedpub run` the logs are all the operator has: "warnings=1 rejected=1" is
    # not enough, the failing source and the rejected file must be named.
    newsroom.set_config(
        '[[sources]]\ntype = "feed"\nname = "gazette"\nurl = "http://127.0.0.1:9/feed.xml"\n'
        "timeout = 2\n"
    )
    newsroom.write("ok.md", "---\ntitle: Fine\ndate: 2026-11-20 09:00\n---\nBody.\n")
    newsroom.write("bad.md", "---\ntitle: [broken\n---\nBody.\n")
    d = Daemon(newsroom.config(), newsroom.store(), clock=Clock(NOW))
    try:
        d.tick(NOW)
    finally:
        d.store.close()
    warnings = [r for r in scheduler_log.records if r.levelno >= logging.WARNING]
    by_source = {getattr(r, "source", None): r for r in warnings}
    assert "gazette" in by_source, [r.getMessage() for r in warnings]
    assert by_source["gazette"].status == "error"  # type: ignore[attr-defined]
    assert "127.0.0.1:9" in by_source["gazette"].error  # type: ignore[attr-defined]
    rejected = [r for r in warnings if "bad.md" in str(getattr(r, "input", ""))]
    assert len(rejected) == 1 and "YAML" in rejected[0].input  # type: ignore[attr-defined]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more: connections are refused


def test_daemon_does_not_log_a_paused_edition_as_sent(
    newsroom: Newsroom, scheduler_log: LogRecords
) -> None:
    newsroom.set_config(
        f'[delivery]\nbackend = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\n'
        f"port = {closed_port()}\ntimeout = 5\n",
        base=CONFIG,
    )
    newsroom.write("a.md", "---\ntitle: Port strike ends\ndate: 2026-11-25 09:00\n---\nBody.\n")
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=NOW)
    with store.begin() as conn:
        subs.add(cfg, conn, "ok@example.com", newsletters=["daily"], now=NOW)
    d = Daemon(cfg, store, clock=Clock(NOW))
    try:
        report = d.send_slot("daily", SLOT, NOW, reason="schedule")
    finally:
        store.close()
    assert report is not None and report.status == "paused" and report.sent == 0
    [rec] = [r for r in scheduler_log.records if getattr(r, "newsletter", None) == "daily"]
    assert rec.levelno == logging.WARNING, rec.getMessage()
    assert "sent" not in rec.getMessage() and "paused" in rec.getMessage()
    assert rec.edition_remaining == 1  # type: ignore[attr-defined]


# ---- refusing to start ------------------------------------------------------------------


def start_refused(newsroom: Newsroom) -> ConfigError:
    """Daemon.start must raise (a CLI `run` would otherwise block here for good)."""
    d = Daemon(newsroom.config(), newsroom.store(), clock=Clock(NOW))
    try:
        with pytest.raises(ConfigError) as err:
            d.start(paused=True)
    finally:
        if d.lock.holder() is not None:
            d.stop(timeout=10)
        d.store.close()
    assert err.value.exit_code == 2  # `feedpub run` exits 2: systemd does not restart it
    assert lock_for(newsroom.config().store_url).holder() is None
    return err.value


def test_run_refuses_to_start_without_the_secrets_its_newsletters_need(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon started, collected for hours and failed every newsletter slot with a
    # config error; systemd kept it "active". Refuse at start, as `digest send` does.
    monkeypatch.delenv("FEEDPUB_TEST_SECRET")
    err = start_refused(newsroom)
    assert "FEEDPUB_TEST_SECRET" in str(err) and "secrets.token_key_env" in str(err)


def test_run_refuses_to_start_without_the_smtp_password(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDPUB_QA_SMTP_PASSWORD", raising=False)
    newsroom.set_config(
        '[delivery]\nbackend = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\n'
        'username = "news"\npassword_env = "FEEDPUB_QA_SMTP_PASSWORD"\n'
    )
    assert "FEEDPUB_QA_SMTP_PASSWORD" in str(start_refused(newsroom))


def test_run_without_newsletters_needs_no_token_secret(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDPUB_TEST_SECRET")
    cfg_text = CONFIG[: CONFIG.index("[[newsletters]]")] + CONFIG[CONFIG.index("[secrets]") :]
    newsroom.set_config(base=cfg_text)
    d = Daemon(newsroom.config(), newsroom.store(), clock=Clock(NOW))
    d.start(paused=True)
    assert d.stop(timeout=10)
    d.store.close()
