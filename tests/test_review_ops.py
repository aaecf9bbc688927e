"""Operator review: bugs found running feedpub as in production, each pinned by a test."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.collect import collect
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.digest.send import cancel_unsubscribed
from feedpub.errors import ConfigError, LockedError
from feedpub.locks import FileLock, lock_for
from feedpub.logs import LogfmtFormatter, setup_logging
from feedpub.scheduler.daemon import Daemon
from feedpub.status import gather_status
from tests import test_status
from tests.conftest import LogRecords, Newsroom
from tests.test_scheduler_daemon import CONFIG, SLOT, Clock
from tests.test_status import NOW

sent_room = test_status.sent_room  # the fixture: a sent edition (ok, temporary, permanent)


def test_status_does_not_count_cancelled_deliveries_as_pending(sent_room: Newsroom) -> None:
    # slow@ (a temporary failure, due for a retry) unsubscribes before the retry: its row
    # becomes "cancelled" and will never be sent, so nothing is pending any more.
    cfg = sent_room.config()
    store = sent_room.store()
    with store.begin() as conn:
        subs.remove(conn, "slow@example.com", newsletter="daily", now=NOW)
    [edition] = gather_status(cfg, store, NOW).editions
    assert cancel_unsubscribed(store, edition.id, "daily", NOW) == 1
    [edition] = gather_status(cfg, store, NOW).editions
    assert (edition.sent, edition.failed, edition.bounced) == (1, 0, 1)
    assert edition.pending == 0
    store.close()


def test_status_json_daemon_since_is_utc_with_z(sent_room: Newsroom) -> None:
    cfg = sent_room.config()
    d = Daemon(cfg, sent_room.store(), clock=Clock(NOW))
    d.start(paused=True)
    try:
        res = CliRunner().invoke(main, ["--config", str(sent_room.config_path), "status", "--json"])
    finally:
        assert d.stop(timeout=10)
        d.store.close()
    assert res.exit_code == 0, res.output
    daemon = json.loads(res.output)["daemon"]
    assert daemon["running"] is True and daemon["pid"] == os.getpid()
    assert daemon["since"].endswith("Z"), daemon["since"]


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


def test_error_messages_keep_their_bracketed_config_keys(newsroom: Newsroom) -> None:
    # "[store] url" was printed as " url": rich took "[store]" for a markup tag.
    newsroom.set_config(base=CONFIG.replace("sqlite:///feedpub.db", "sqlite:///missing/f.db"))
    res = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status"])
    assert res.exit_code == 2
    assert "create it or fix [store] url" in " ".join(res.output.split()), res.output


def test_rejections_keep_brackets_in_their_reason(newsroom: Newsroom) -> None:
    # A file named "notes [draft].md" was reported as "notes .md".
    newsroom.write("notes [draft].md", "---\ntitle: [broken\n---\nBody.\n")
    res = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "collect"])
    assert res.exit_code == 1, res.output
    [line] = [x for x in res.output.splitlines() if x.startswith("rejected")]
    assert "notes [draft].md:2" in line, line


def test_status_numbers_editions_as_readers_and_digest_commands_do(newsroom: Newsroom) -> None:
    # A skipped edition takes no number readers see: mail "No. 1", `digest list` "No. 1",
    # `digest status daily/1`; `feedpub status` said "#2".
    newsroom.set_config(base=CONFIG)
    cfg = newsroom.config()
    store = newsroom.store()
    with store.begin() as conn:
        subs.add(cfg, conn, "ok@example.com", newsletters=["daily"], now=NOW)
    day_before = SLOT - timedelta(days=1)
    first = send_newsletter(cfg, store, "daily", now=day_before, slot=day_before)
    assert first.status == "skipped"  # nothing to send yet
    newsroom.write("a.md", "---\ntitle: Port strike ends\ndate: 2026-11-25 09:00\n---\nBody.\n")
    collect(cfg, store, now=NOW)
    second = send_newsletter(cfg, store, "daily", now=NOW, slot=SLOT)
    assert second.status == "sent" and second.number == 1
    store.close()
    res = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    issues = {e["slot"]: e["issue"] for e in data["editions"]}
    assert issues == {"2026-11-26T07:00Z": 1, "2026-11-25T07:00Z": None}
    assert data["newsletters"][0]["last_edition"]["issue"] == 1
    table = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status"])
    assert "#1" in table.output and "#2" not in table.output, table.output


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    setup_logging("WARNING")


def test_other_libraries_warnings_are_structured_too(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # asyncio (under aiosmtplib), sqlalchemy, httpx... log through the root logger; their
    # warnings and errors came out as bare text lines between our JSON lines.
    setup_logging("INFO", "json")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    logging.getLogger("some.library").info("chatter")  # below WARNING: not shown
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert [(r["logger"], r["level"], r["msg"]) for r in lines] == [
        ("asyncio", "error", "Task exception was never retrieved")
    ]


def test_logfmt_quotes_control_characters() -> None:
    # A carriage return or tab inside a value (an upstream error text) was written raw.
    record = logging.makeLogRecord(
        {"name": "feedpub.x", "levelname": "WARNING", "msg": "m", "error": "a\rb\tc"}
    )
    line = LogfmtFormatter().format(record)
    assert "\r" not in line and "\t" not in line
    assert 'error="a\\rb\\tc"' in line


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


def test_a_status_probe_does_not_make_a_starting_daemon_think_another_one_runs(
    tmp_path: Path,
) -> None:
    # `feedpub status` probes the lock with a shared flock. A daemon (re)started by systemd
    # at that instant was refused with "another feedpub daemon is already running" and
    # exit 2, which RestartPreventExitStatus=2 leaves down for good.
    path = tmp_path / "feedpub.db.daemon.lock"
    path.write_text("")
    probe = os.open(path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what FileLock.holder() does
    release = threading.Timer(0.2, lambda: fcntl.flock(probe, fcntl.LOCK_UN))
    release.start()
    lock = FileLock(path)
    try:
        lock.acquire()  # waits out the probe instead of refusing
        assert lock.held
    finally:
        release.join()
        lock.release()
        os.close(probe)
    # A real holder (exclusive) is still refused at once.
    holder = FileLock(path)
    holder.acquire()
    try:
        with pytest.raises(LockedError):
            FileLock(path).acquire()
    finally:
        holder.release()


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>G</title>'
    b"<link>https://gazette.example/</link><description>d</description>"
    b"<item><guid>g-1</guid><title>One</title><link>https://gazette.example/1</link>"
    b"<description>&lt;p&gt;Body one.&lt;/p&gt;</description>"
    b"<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"
)


def test_a_broken_upstream_answer_stays_an_error_on_the_next_poll(newsroom: Newsroom) -> None:
    # The CMS serves a maintenance page (with an ETag) instead of its feed: the first poll
    # reported the error, then feedpub sent that page's ETag back, got 304 and reported
    # "not-modified" (all fine) for as long as the page stayed up.
    from tests.upstream_http import UpstreamServer

    server = UpstreamServer().start()
    try:
        newsroom.set_config(
            f'[[sources]]\ntype = "feed"\nname = "gazette"\nurl = "{server.url("/feed")}"\n'
        )
        cfg = newsroom.config()
        store = newsroom.store()
        server.route("/feed", body=RSS, etag='"feed-1"')
        first = collect(cfg, store, now=NOW)
        assert first.counts["new"] == 1
        server.route(
            "/feed", body=b"<html><body>Down for maintenance</body></html>",
            content_type="text/html", etag='"maintenance"',
        )  # fmt: skip
        statuses = []
        for i in range(2):
            report = collect(cfg, store, now=NOW + timedelta(minutes=i + 1))
            statuses.append({s.name: s.status for s in report.sources}["gazette"])
        store.close()
    finally:
        server.stop()
    assert statuses == ["error", "error"]


def test_pages_of_a_child_sitemap_that_failed_are_found_on_the_next_poll(
    newsroom: Newsroom,
) -> None:
    # A sitemap index whose second child answered 500 once: the index itself did not
    # change, so the next poll got a 304 for it and never asked for that child again.
    from tests.upstream_http import UpstreamServer

    html = "text/html; charset=utf-8"
    server = UpstreamServer().start()
    try:
        base = server.url("")
        server.serve_file("/post/a", "page-wordpress.html", content_type=html)
        server.serve_file("/post/b", "page-wix.html", content_type=html)
        index = (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
            f'sitemap/0.9"><sitemap><loc>{base}/s1.xml</loc></sitemap>'
            f"<sitemap><loc>{base}/s2.xml</loc></sitemap></sitemapindex>"
        )
        server.route("/index.xml", body=index.encode(), etag='"i1"')

        def urlset(path: str) -> bytes:
            return (
                '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                f'sitemap/0.9"><url><loc>{base}{path}</loc></url></urlset>'
            ).encode()

        server.route("/s1.xml", body=urlset("/post/a"))
        server.route("/s2.xml", status=500, body=b"oops")
        newsroom.set_config(
            f'[[sources]]\ntype = "pages"\nname = "site"\nsitemap = "{base}/index.xml"\n'
            "requests_per_second = 1000\n"
        )
        cfg = newsroom.config()
        store = newsroom.store()
        first = collect(cfg, store, now=NOW)
        server.route("/s2.xml", body=urlset("/post/b"))
        second = collect(cfg, store, now=NOW + timedelta(minutes=5))
        store.close()
    finally:
        server.stop()
    assert first.counts["new"] == 1
    assert second.counts["new"] == 1, [(s.name, s.status, s.warnings) for s in second.sources]
