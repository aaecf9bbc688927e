"""Editions delivered over SMTP through the ledger: real SQLite, real aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema as s
from feedpub.cli import main
from feedpub.delivery.manager import LedgerRow, decide_outcome
from feedpub.digest import send_newsletter
from feedpub.errors import (
    PermanentDeliveryError,
    ServerUnavailableError,
    TemporaryDeliveryError,
)
from feedpub.lifecycle.verp import Verp
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.smtpserver import SmtpTestServer, dead_port
from tests.test_digest_support import NOW, article, hours_ago, put


@pytest.fixture
def server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as srv:
        yield srv


def smtp_config(port: int, **extra: object) -> str:
    lines = [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
    return f"""
[delivery]
backend = "smtp"
[delivery.smtp]
host = "127.0.0.1"
port = {port}
helo_name = "client.test"
{chr(10).join(lines)}
"""


def add_subscribers(store: Store, n: int) -> list[str]:
    """n active subscribers of "daily" (all beats), inserted in bulk."""
    emails = [f"reader{i}@example.org" for i in range(n)]
    with store.begin() as conn:
        conn.execute(
            sa.insert(s.subscribers),
            [
                {"email": e, "name": f"Reader {i}", "status": "active", "hard_bounces": 0,
                 "created": NOW, "updated": NOW}
                for i, e in enumerate(emails)
            ],
        )  # fmt: skip
        ids = conn.execute(sa.select(s.subscribers.c.id)).scalars().all()
        conn.execute(
            sa.insert(s.subscriptions),
            [
                {"subscriber_id": i, "newsletter": "daily", "beats": [], "status": "active",
                 "created": NOW, "updated": NOW}
                for i in ids
            ],
        )  # fmt: skip
    return emails


def make_room(
    newsroom: Newsroom, port: int, n: int, *, now: datetime = NOW, **smtp: object
) -> tuple[Store, list[str]]:
    """SMTP config, two fresh articles (published before ``now``) and n subscribers. The
    CLI tests pass the real time: the command line reads the clock."""
    newsroom.set_config(smtp_config(port, **smtp))
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2, now)), article(2, "technology", hours_ago(3, now)))
    return store, add_subscribers(store, n)


def ledger(store: Store) -> dict[str, tuple[str, int]]:
    with store.read() as conn:
        return {r.email: (r.status, r.attempts) for r in conn.execute(sa.select(s.deliveries))}


def edition_status(store: Store) -> str:
    with store.read() as conn:
        return str(conn.execute(sa.select(s.editions.c.status)).scalar_one())


def test_a_thousand_subscribers_each_get_the_edition_exactly_once(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, emails = make_room(newsroom, server.port, 1000, pool_size=4)
    r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    assert (r.status, r.sent, r.failed, r.bounced, r.remaining) == ("sent", 1000, 0, 0, 0)
    got = server.by_recipient()
    assert sorted(got) == sorted(emails)
    assert {len(v) for v in got.values()} == {1}
    with store.read() as conn:
        rows = {r.email: r for r in conn.execute(sa.select(s.deliveries))}
    msgids = {a: r.message_id for a, r in rows.items()}
    cfg = newsroom.config()
    verp = Verp(cfg.token_key(), cfg)
    for addr, [received] in got.items():
        # MAIL FROM is the VERP return path naming this subscriber's ledger row
        local, _, domain = received.mail_from.partition("@")
        assert domain == "news.example" and local.startswith("bounces+")
        ref = verp.verify(local.removeprefix("bounces+"))
        assert ref is not None
        assert (ref.edition_id, ref.subscriber_id) == (
            rows[addr].edition_id,
            rows[addr].subscriber_id,
        )
        msg = received.message()
        assert email.utils.parseaddr(msg["To"])[1] == addr
        assert email.utils.parseaddr(msg["From"])[1] == "news@news.example"
        assert msg["Subject"]
        assert msg["Date"]
        assert msg["Message-ID"] == f"<{msgids[addr]}>"
        assert msg["List-Id"]
        unsub = " ".join(msg["List-Unsubscribe"].split())
        assert unsub.startswith("<https://") and "<mailto:" in unsub
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
    assert len(set(msgids.values())) == 1000
    assert server.max_open <= 4
    # Running it again sends nothing.
    again = send_newsletter(newsroom.config(), store, "daily", now=NOW + timedelta(minutes=5))
    assert (again.status, again.sent) == ("sent", 0)
    assert len(server.received) == 1000


def test_faults_4xx_retried_5xx_bounced_drop_and_timeout_recovered(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, emails = make_room(
        newsroom, server.port, 8, timeout=1.5, retry_base=0, max_attempts=4, pool_size=2
    )  # a timeout a loaded machine cannot hit by accident on an ordinary message
    f = server.faults
    f.temp_fail["reader1@example.org"] = 2  # 451 twice, then accepted
    f.perm_fail.add("reader2@example.org")  # 550: bounced, never retried
    f.drop_data["reader3@example.org"] = 1  # connection dropped after DATA, once
    f.drop_mid_data["reader6@example.org"] = 1  # ... and in the middle of the message
    f.slow["reader4@example.org"] = 2  # slower than the timeout on both connections
    f.slow_seconds = 4.0
    f.temp_fail["reader5@example.org"] = 99  # 4xx every time: given up after max_attempts
    r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    got = server.by_recipient()
    assert sorted(got) == sorted(set(emails) - {"reader2@example.org", "reader5@example.org"})
    assert {len(v) for v in got.values()} == {1}  # nobody twice
    state = ledger(store)
    assert state["reader0@example.org"] == ("sent", 1)
    assert state["reader1@example.org"] == ("sent", 3)  # two 4xx, then delivered
    assert state["reader2@example.org"] == ("bounced", 1)
    assert server.rcpt_attempts["reader2@example.org"] == 1
    assert state["reader3@example.org"] == ("sent", 1)  # retried on a fresh connection
    assert state["reader6@example.org"] == ("sent", 1)
    assert state["reader4@example.org"] == ("sent", 2)  # timed out twice, then delivered
    assert state["reader5@example.org"] == ("bounced", 4)
    assert server.rcpt_attempts["reader5@example.org"] == 4
    assert (r.status, r.sent, r.remaining) == ("sent", 6, 0)
    with store.read() as conn:
        subs = {
            row.email: (row.status, row.hard_bounces)
            for row in conn.execute(sa.select(s.subscribers))
        }
        errors = {
            row.email: row.last_error
            for row in conn.execute(
                sa.select(s.deliveries).where(s.deliveries.c.last_error.is_not(None))
            )
        }
    assert subs["reader2@example.org"] == ("bounced", 1)  # hard_bounce_limit = 1
    assert subs["reader5@example.org"] == ("active", 0)  # a give-up is not a hard bounce
    assert "550" in errors["reader2@example.org"]
    assert errors["reader5@example.org"].startswith("gave up after 4 attempts")


def test_temporary_failure_waits_for_its_backoff(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, _ = make_room(newsroom, server.port, 3)  # retry_base: 1 minute
    server.faults.temp_fail["reader1@example.org"] = 1
    r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    assert (r.status, r.sent, r.failed, r.remaining) == ("sending", 2, 1, 1)
    with store.read() as conn:
        row = conn.execute(
            sa.select(s.deliveries).where(s.deliveries.c.email == "reader1@example.org")
        ).one()
    assert (row.status, row.attempts) == ("failed", 1)
    # backoff from the run's own clock (it starts at NOW), whatever today's date
    assert NOW + timedelta(seconds=55) < row.next_attempt < NOW + timedelta(minutes=2)
    # A run before the retry is due sends nothing and does not finish the edition.
    r2 = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    assert (r2.status, r2.sent) == ("sending", 0)
    assert len(server.received) == 2


def test_a_server_down_pauses_the_edition_and_the_next_run_resumes(
    newsroom: Newsroom,
) -> None:
    port = dead_port()
    store, emails = make_room(newsroom, port, 5)
    r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    assert (r.status, r.sent) == ("paused", 0)
    assert edition_status(store) == "paused"
    assert set(ledger(store).values()) == {("queued", 0)}  # no attempt counted
    with store.read() as conn:
        assert conn.execute(sa.select(s.editions.c.finished)).scalar_one() is None
    assert "cannot connect" in r.errors[0] and "the next run resumes it" in r.errors[0]
    with SmtpTestServer(port=port) as srv:
        r2 = send_newsletter(newsroom.config(), store, "daily", now=NOW + timedelta(hours=1))
        assert (r2.status, r2.sent, r2.created) == ("sent", 5, False)
        got = srv.by_recipient()
    assert sorted(got) == sorted(emails)
    assert {len(v) for v in got.values()} == {1}


def test_a_server_dying_mid_send_pauses_and_resumes_with_in_flight_duplicates_only(
    newsroom: Newsroom,
) -> None:
    srv = SmtpTestServer().start()
    port = srv.port
    try:
        store, emails = make_room(newsroom, port, 20, pool_size=2)
        srv.on_data = lambda kept: srv.crash() if kept == 6 else None
        r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
        first = srv.by_recipient()
    finally:
        srv.stop()
    assert r.status == "paused" and edition_status(store) == "paused"
    # The server kept >= 6 messages; the sender recorded all but those in flight (<= 2).
    assert len(first) >= 6 and 0 <= len(first) - r.sent <= 2
    states = ledger(store)
    unsent = [e for e, (st, _) in states.items() if st != "sent"]
    assert {states[e] for e in unsent} == {("queued", 0)}  # put back, no attempt counted
    with SmtpTestServer(port=port) as again:
        r2 = send_newsletter(newsroom.config(), store, "daily", now=NOW + timedelta(hours=1))
        second = again.by_recipient()
    assert (r2.status, r2.sent) == ("sent", len(unsent))
    total = {e: len(first.get(e, [])) + len(second.get(e, [])) for e in emails}
    assert min(total.values()) == 1  # nobody lost
    duplicates = [e for e, n in total.items() if n > 1]
    assert len(duplicates) <= 2  # at most the messages in flight on the 2 connections
    assert all(e in first and e in unsent for e in duplicates)


def test_hard_bounce_limit_counts_bounces(newsroom: Newsroom, server: SmtpTestServer) -> None:
    store, _ = make_room(newsroom, server.port, 2, hard_bounce_limit=2)
    server.faults.perm_fail.add("reader0@example.org")
    send_newsletter(newsroom.config(), store, "daily", now=NOW)
    with store.read() as conn:
        row = conn.execute(
            sa.select(s.subscribers).where(s.subscribers.c.email == "reader0@example.org")
        ).one()
    assert (row.status, row.hard_bounces) == ("active", 1)  # one more needed


def test_hourly_limit_spans_runs_through_the_ledger(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, _ = make_room(newsroom, server.port, 3, rate_per_hour=4)
    first = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    assert (first.status, first.sent) == ("sent", 3)
    # A new edition in a new run (a new messenger): only 1 of the hour's 4 is left.
    put(store, article(3, "world", NOW + timedelta(minutes=1)))
    later = NOW + timedelta(minutes=5)
    second = send_newsletter(newsroom.config(), store, "daily", now=later, extra=True)
    assert (second.status, second.sent, second.remaining) == ("paused", 1, 2)
    assert "hourly limit of 4" in second.errors[0]
    assert len(server.received) == 4


def _row(status: str = "queued", attempts: int = 0) -> LedgerRow:
    return LedgerRow(1, 1, "a@b.c", (), "m@x", status, attempts, NOW)


@pytest.mark.parametrize(("attempts", "delay_min"), [(0, 1), (1, 2), (2, 4), (3, 8)])
def test_backoff_doubles(attempts: int, delay_min: int) -> None:
    o = decide_outcome(
        _row("failed", attempts),
        TemporaryDeliveryError("451"),
        now=NOW,
        edition_created=NOW,
        max_attempts=10,
        max_age=timedelta(days=2),
        retry_base=timedelta(minutes=1),
    )
    assert (o.status, o.attempts, o.next_attempt) == (
        "failed",
        attempts + 1,
        NOW + timedelta(minutes=delay_min),
    )


def test_outcomes_for_give_up_bounce_and_server_down() -> None:
    kw = {"now": NOW, "max_attempts": 3, "retry_base": timedelta(minutes=1)}
    old = decide_outcome(
        _row("failed", 1),
        TemporaryDeliveryError("451"),
        edition_created=NOW - timedelta(days=3),
        max_age=timedelta(days=2),
        **kw,  # type: ignore[arg-type]
    )
    assert old.status == "bounced" and not old.hard_bounce
    assert old.last_error is not None and "2 days" in old.last_error
    perm = decide_outcome(
        _row(),
        PermanentDeliveryError("550"),
        edition_created=NOW,
        max_age=None,
        **kw,  # type: ignore[arg-type]
    )
    assert (perm.status, perm.hard_bounce, perm.attempts) == ("bounced", True, 1)
    down = decide_outcome(
        _row("failed", 2),
        ServerUnavailableError("x"),
        edition_created=NOW,
        max_age=None,
        **kw,  # type: ignore[arg-type]
    )
    assert (down.status, down.attempts, down.paused) == ("failed", 2, True)
    ok = decide_outcome(_row(), None, edition_created=NOW, max_age=None, **kw)  # type: ignore[arg-type]
    assert (ok.status, ok.attempts, ok.last_error) == ("sent", 1, None)


# ---- the command line ---------------------------------------------------------------------------
def run(newsroom: Newsroom, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_cli_dry_run_sends_nothing_then_send_and_status(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, _ = make_room(newsroom, server.port, 4, now=datetime.now(UTC))
    server.faults.perm_fail.add("reader3@example.org")
    code, out = run(newsroom, "digest", "send", "daily", "--dry-run")
    assert code == 0, out
    assert "nothing sent" in out
    assert server.received == []
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar() == 0
    code, out = run(newsroom, "digest", "send", "daily")
    assert code == 0, out
    assert "sent 3" in out and "bounced 1" in out
    assert len(server.received) == 3
    code, out = run(newsroom, "digest", "status", "daily")
    assert code == 0, out
    assert "queued 0  sending 0  sent 3  failed 0  bounced 1  total 4" in out
    assert "550" in out  # the bounce's reason
    code, out = run(newsroom, "digest", "status", "daily/1")
    assert code == 0 and "sent 3" in out
    code, out = run(newsroom, "digest", "status", "daily/9")
    assert code == 2 and "no edition" in out


def test_cli_test_message_goes_outside_the_ledger(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, _ = make_room(newsroom, server.port, 2, now=datetime.now(UTC))
    code, out = run(newsroom, "digest", "test", "daily", "--to", "Editor@Example.org")
    assert code == 0, out
    [got] = server.received
    assert got.rcpt_tos == ("editor@example.org",)
    msg = got.message()
    assert msg["Subject"].startswith("[test] ")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(s.deliveries)).scalar() == 0


def test_cli_paused_send_exits_1(newsroom: Newsroom) -> None:
    make_room(newsroom, dead_port(), 2, now=datetime.now(UTC))
    code, out = run(newsroom, "digest", "send", "daily", "--no-progress")
    assert code == 1
    assert "paused" in out
