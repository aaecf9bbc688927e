"""A relay that stalls is treated as down: after ``stall_limit`` connection-level failures in
a row (timeouts, drops) the edition pauses as for a dead server, and nobody is charged an
attempt. Before: a relay hanging at DATA cost 2 x timeout per recipient, every recipient
was charged an attempt per pass, and ``digest send`` exited 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema as s
from feedpub.cli import main
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.smtpserver import SmtpTestServer
from tests.test_smtp_delivery import make_room


@pytest.fixture
def server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as srv:
        yield srv


def _send(newsroom: Newsroom) -> tuple[int, str]:
    r = CliRunner().invoke(
        main, ["--config", str(newsroom.config_path), "digest", "send", "daily", "--no-progress"]
    )
    return r.exit_code, r.output


def _ledger(store: Store) -> dict[str, tuple[str, int]]:
    with store.read() as conn:
        return {r.email: (r.status, r.attempts) for r in conn.execute(sa.select(s.deliveries))}


def _hang_at_data(srv: SmtpTestServer, emails: list[str]) -> None:
    srv.faults.slow_seconds = 4.0  # longer than the client's timeout: a hung relay
    for e in emails:
        srv.faults.slow[e] = 1000


def test_a_relay_that_hangs_at_data_pauses_the_edition_and_charges_nobody(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    # The CLI runs in this process and reads its (possibly moved) wall clock.
    store, emails = make_room(newsroom, server.port, 30, now=datetime.now(UTC), timeout=0.5)
    _hang_at_data(server, emails)
    code, out = _send(newsroom)
    assert code == 1, out  # paused, as for a dead server
    assert "paused" in out and "stalled" in out
    ledger = _ledger(store)
    assert set(ledger.values()) == {("queued", 0)}  # put back untouched: no attempt charged
    # Bounded work: a few transactions (stall_limit, plus the pool's in-flight retries),
    # not two per recipient.
    tried = sum(server.rcpt_attempts.values())
    assert tried <= 3 + 2 * 4, tried
    with store.read() as conn:
        assert conn.execute(sa.select(s.editions.c.status)).scalar_one() == "paused"

    # The relay recovers: the next run sends everyone once.
    server.faults.slow.clear()
    code, out = _send(newsroom)
    assert code == 0, out
    assert set(_ledger(store).values()) == {("sent", 1)}
    assert {len(v) for v in server.by_recipient().values()} == {1}


def test_one_message_the_relay_keeps_dropping_is_charged_and_the_rest_goes_out(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    store, emails = make_room(newsroom, server.port, 5, now=datetime.now(UTC), pool_size=1)
    poison = emails[0]
    server.faults.drop_mid_data[poison] = 1000  # this message always breaks the connection
    code, out = _send(newsroom)
    assert code == 0, out  # not a stalled relay: it answers the others
    ledger = _ledger(store)
    assert ledger.pop(poison) == ("failed", 1)  # a temporary failure, retried later
    assert set(ledger.values()) == {("sent", 1)}


def test_a_stalled_main_relay_fails_over_to_the_fallback_without_charging(
    newsroom: Newsroom, server: SmtpTestServer
) -> None:
    with SmtpTestServer() as backup:
        store, emails = make_room(newsroom, server.port, 8, now=datetime.now(UTC), timeout=0.5)
        text = newsroom.config_path.read_text(encoding="utf-8")
        newsroom.config_path.write_text(
            text
            + f'\n[[delivery.smtp.fallbacks]]\nhost = "127.0.0.1"\nport = {backup.port}\n'
            + "timeout = 5\n",
            encoding="utf-8",
        )
        _hang_at_data(server, emails)
        code, out = _send(newsroom)
        got = backup.by_recipient()
    assert code == 0, out
    assert set(_ledger(store).values()) == {("sent", 1)}
    assert sorted(got) == sorted(emails) and {len(v) for v in got.values()} == {1}
    assert server.received == []
