"""The SMTP messenger against a real aiosmtpd server on 127.0.0.1 (tests/smtpserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedpub.config import SmtpConfig, SmtpServerConfig, parse_config
from feedpub.delivery.base import OutgoingMessage
from feedpub.delivery.smtp import SmtpMessenger, server_passwords
from feedpub.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    ServerUnavailableError,
    TemporaryDeliveryError,
)
from tests.smtpserver import SmtpTestServer, dead_port, make_message, self_signed_cert


@pytest.fixture
def server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as srv:
        yield srv


def settings(port: int, **kw: Any) -> SmtpConfig:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": port, "helo_name": "client.test"}
    return SmtpConfig(**{**base, **kw})


def messenger(port: int, **kw: Any) -> SmtpMessenger:
    return SmtpMessenger(settings(port, **kw))


def test_one_message_arrives_with_headers_and_body_intact(server: SmtpTestServer) -> None:
    out = make_message(1)
    with messenger(server.port) as m:
        m.send(out)
    [got] = server.received
    assert got.mail_from == "news@news.example"
    assert got.rcpt_tos == ("reader1@example.org",)
    msg = got.message()
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].strip() == (
        "<https://news.example/unsubscribe?t=1>, <mailto:u@news.example>"
    )
    assert msg["Message-ID"] == "<1.1@news.example>"
    assert msg["Subject"] == "Test Daily — edition 1"
    text = msg.get_body(("plain",))
    assert text is not None
    assert ".leading dot must survive" in text.get_content()  # dot-stuffing undone
    assert got.data == out.data  # byte for byte


def test_send_many_uses_a_bounded_pool_of_reused_connections(server: SmtpTestServer) -> None:
    msgs = [make_message(i, body_lines=3) for i in range(300)]
    results: list[tuple[OutgoingMessage, DeliveryError | None]] = []
    with messenger(server.port, pool_size=3) as m:
        m.send_many(iter(msgs), lambda msg, err: results.append((msg, err)))
    assert [e for _, e in results] == [None] * 300
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(x.recipient for x in msgs)
    assert server.connections == 3  # opened once each, then reused
    assert server.max_open <= 3


def test_send_many_pulls_lazily_so_in_flight_stays_within_the_pool(
    server: SmtpTestServer,
) -> None:
    pulled = 0
    max_outstanding = 0
    done = 0

    def source() -> Iterator[OutgoingMessage]:
        nonlocal pulled, max_outstanding
        for i in range(60):
            pulled += 1
            max_outstanding = max(max_outstanding, pulled - done)
            yield make_message(i, body_lines=2)

    def on_result(msg: OutgoingMessage, err: DeliveryError | None) -> None:
        nonlocal done
        done += 1

    with messenger(server.port, pool_size=4) as m:
        m.send_many(source(), on_result)
    assert done == 60
    assert max_outstanding <= 4


def test_4xx_is_temporary_and_the_connection_is_kept(server: SmtpTestServer) -> None:
    server.faults.temp_fail["reader1@example.org"] = 1
    with messenger(server.port) as m:
        with pytest.raises(TemporaryDeliveryError, match="451"):
            m.send(make_message(1))
        m.send(make_message(1))  # the retry the ledger would make later
        m.send(make_message(2))
    assert [r.rcpt_tos[0] for r in server.received] == [
        "reader1@example.org",
        "reader2@example.org",
    ]
    assert server.connections == 1  # RSET, not a reconnect


def test_5xx_is_permanent(server: SmtpTestServer) -> None:
    server.faults.perm_fail.add("gone@example.org")
    with messenger(server.port) as m:
        with pytest.raises(PermanentDeliveryError, match="550"):
            m.send(make_message(1, recipient="gone@example.org"))
        m.send(make_message(2))
    assert [r.rcpt_tos[0] for r in server.received] == ["reader2@example.org"]
    assert server.rcpt_attempts["gone@example.org"] == 1  # not retried by the messenger


def test_connection_dropped_mid_data_is_retried_on_a_fresh_connection(
    server: SmtpTestServer,
) -> None:
    server.faults.drop_data["reader1@example.org"] = 1
    with messenger(server.port) as m:
        m.send(make_message(1))
    assert [r.rcpt_tos[0] for r in server.received] == ["reader1@example.org"]
    assert server.connections == 2


def test_connection_dropped_in_the_middle_of_the_message_is_retried(
    server: SmtpTestServer,
) -> None:
    server.faults.drop_mid_data["reader1@example.org"] = 1
    with messenger(server.port) as m:
        m.send(make_message(1, body_lines=3000))  # ~200 KB
        m.send(make_message(2))
    assert [r.rcpt_tos[0] for r in server.received] == [
        "reader1@example.org",
        "reader2@example.org",
    ]
    assert server.connections == 2


def test_connection_dropped_twice_is_temporary(server: SmtpTestServer) -> None:
    server.faults.drop_data["reader1@example.org"] = 2
    with messenger(server.port) as m:
        with pytest.raises(TemporaryDeliveryError, match="twice"):
            m.send(make_message(1))
        m.send(make_message(2))  # the messenger recovers for the next message
    assert [r.rcpt_tos[0] for r in server.received] == ["reader2@example.org"]


def test_drop_after_the_relay_kept_the_message_duplicates_only_that_message(
    server: SmtpTestServer,
) -> None:
    # The ambiguous case: the relay queued it but the reply was lost. The retry resends.
    server.faults.drop_after_store["reader1@example.org"] = 1
    with messenger(server.port) as m:
        m.send(make_message(1))
        m.send(make_message(2))
    counts = {k: len(v) for k, v in server.by_recipient().items()}
    assert counts == {"reader1@example.org": 2, "reader2@example.org": 1}


def test_server_slower_than_the_timeout_is_temporary(server: SmtpTestServer) -> None:
    server.faults.slow["reader1@example.org"] = 2
    server.faults.slow_seconds = 1.5
    with (
        messenger(server.port, timeout=0.5) as m,
        pytest.raises(TemporaryDeliveryError, match="twice"),
    ):
        m.send(make_message(1))
    assert server.received == []


def test_slow_once_then_delivered_on_a_fresh_connection(server: SmtpTestServer) -> None:
    server.faults.slow["reader1@example.org"] = 1
    server.faults.slow_seconds = 1.5
    with messenger(server.port, timeout=0.5) as m:
        m.send(make_message(1))
    assert [r.rcpt_tos[0] for r in server.received] == ["reader1@example.org"]


def test_no_server_reachable_raises_server_unavailable() -> None:
    with messenger(dead_port()) as m, pytest.raises(ServerUnavailableError) as ei:
        m.send(make_message(1))
    assert "cannot connect" in str(ei.value)
    assert "127.0.0.1" in str(ei.value)


def test_failover_to_the_next_server(server: SmtpTestServer) -> None:
    fb = SmtpServerConfig(host="127.0.0.1", port=server.port, helo_name="client.test")
    with messenger(dead_port(), fallbacks=(fb,)) as m:
        m.send(make_message(1))
        m.send(make_message(2))
    assert len(server.received) == 2


def test_sender_refused_sets_the_server_aside_and_bounces_nobody(
    server: SmtpTestServer,
) -> None:
    server.faults.reject_sender = True
    with messenger(server.port) as m, pytest.raises(ServerUnavailableError, match="550"):
        m.send(make_message(1))


def test_every_server_refusing_the_sender_pauses(server: SmtpTestServer) -> None:
    server.faults.reject_sender = True
    with SmtpTestServer() as other:
        other.faults.reject_sender = True
        fb = SmtpServerConfig(host="127.0.0.1", port=other.port, helo_name="client.test")
        with messenger(server.port, fallbacks=(fb,)) as m, pytest.raises(ServerUnavailableError):
            m.send(make_message(1))
        assert other.received == []


def test_send_many_stops_pulling_when_every_server_is_down() -> None:
    pulled: list[int] = []
    results: list[DeliveryError | None] = []

    def source() -> Iterator[OutgoingMessage]:
        for i in range(50):
            pulled.append(i)
            yield make_message(i)

    with messenger(dead_port(), pool_size=2) as m, pytest.raises(ServerUnavailableError):
        m.send_many(source(), lambda msg, err: results.append(err))
    assert len(pulled) <= 2  # the rest stay queued for the next run
    assert len(results) == len(pulled)
    assert all(isinstance(e, ServerUnavailableError) for e in results)


def test_hourly_rate_limit_pauses_instead_of_blocking(server: SmtpTestServer) -> None:
    with messenger(server.port, rate_per_hour=3) as m:
        for i in range(3):
            m.send(make_message(i))
        with pytest.raises(ServerUnavailableError, match="hourly limit of 3"):
            m.send(make_message(4))
    assert len(server.received) == 3


def test_hourly_limit_on_the_main_server_fails_over(server: SmtpTestServer) -> None:
    with SmtpTestServer() as other:
        fb = SmtpServerConfig(host="127.0.0.1", port=other.port, helo_name="client.test")
        with messenger(server.port, rate_per_hour=2, fallbacks=(fb,)) as m:
            for i in range(5):
                m.send(make_message(i))
        assert (len(server.received), len(other.received)) == (2, 3)


def test_per_second_rate_paces_sends(server: SmtpTestServer) -> None:
    # A fake clock: the messenger must ask to sleep 1/rate between sends (no real waiting).
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    m = SmtpMessenger(settings(server.port, rate_per_second=4), clock=lambda: now[0], sleep=sleep)
    with m:
        for i in range(3):
            m.send(make_message(i))
    assert slept == [0.25, 0.25]
    assert len(server.received) == 3


def test_auth_with_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_TEST_PW", "s3cret")
    with SmtpTestServer(users={"feedpub": "s3cret"}) as srv:
        cfg = _config(srv.port, 'username = "feedpub"\npassword_env = "SMTP_TEST_PW"\n')
        with SmtpMessenger.from_config(cfg) as m:
            m.send(make_message(1))
        assert len(srv.received) == 1

        monkeypatch.setenv("SMTP_TEST_PW", "wrong")
        cfg = _config(srv.port, 'username = "feedpub"\npassword_env = "SMTP_TEST_PW"\n')
        with SmtpMessenger.from_config(cfg) as m, pytest.raises(ServerUnavailableError) as ei:
            m.send(make_message(2))
        assert "AUTH as 'feedpub' failed" in str(ei.value)
        assert "wrong" not in str(ei.value)  # the secret never appears in errors
        assert len(srv.received) == 1


def test_missing_password_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMTP_TEST_PW", raising=False)
    cfg = _config(25, 'username = "feedpub"\npassword_env = "SMTP_TEST_PW"\n')
    with pytest.raises(ConfigError, match="SMTP_TEST_PW"):
        server_passwords(cfg)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_modes_verify_the_relay_certificate(security: str, tmp_path: Path) -> None:
    pair = self_signed_cert(tmp_path)
    if pair is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    with SmtpTestServer(tls=pair, implicit_tls=security == "tls") as srv:
        with messenger(srv.port, security=security, ca_file=pair[0]) as m:
            m.send(make_message(1))
        assert len(srv.received) == 1
        # Without our CA the certificate does not verify: the server is unusable.
        with (
            messenger(srv.port, security=security) as m,
            pytest.raises(ServerUnavailableError, match=r"TLS|certificate"),
        ):
            m.send(make_message(2))
        assert len(srv.received) == 1


def test_starttls_required_but_not_offered(server: SmtpTestServer) -> None:
    with (
        messenger(server.port, security="starttls") as m,
        pytest.raises(ServerUnavailableError, match="STARTTLS"),
    ):
        m.send(make_message(1))


def _config(port: int, extra: str) -> Any:
    import tomllib

    text = f"""
[site]
title = "T"
base_url = "https://news.example/"
[delivery]
backend = "smtp"
[delivery.smtp]
host = "127.0.0.1"
port = {port}
helo_name = "client.test"
{extra}
"""
    return parse_config(tomllib.loads(text))
