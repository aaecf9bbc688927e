"""`feedpub status`: gathered from a real store after real collect, build and sends.
Cancelled deliveries are not pending; editions carry the number readers see (none for a
skipped one); times in ``--json`` are UTC with a Z."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.collect import collect
from feedpub.delivery.base import OutgoingMessage
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.digest.send import cancel_unsubscribed
from feedpub.errors import PermanentDeliveryError, TemporaryDeliveryError
from feedpub.scheduler.daemon import Daemon
from feedpub.status import gather_status
from tests.conftest import Newsroom
from tests.test_scheduler_daemon import CONFIG, NOW, SLOT, Clock


class FaultyOutbox:
    """The real outbox, except for two addresses: one temporary, one permanent failure."""

    def __init__(self, outbox: OutboxMessenger) -> None:
        self.outbox = outbox

    def send(self, message: OutgoingMessage) -> None:
        if message.recipient == "slow@example.com":
            raise TemporaryDeliveryError("451 try again later")
        if message.recipient == "gone@example.com":
            raise PermanentDeliveryError("550 no such user")
        self.outbox.send(message)

    def close(self) -> None:
        self.outbox.close()


@pytest.fixture
def sent_room(newsroom: Newsroom) -> Newsroom:
    newsroom.set_config(base=CONFIG)
    newsroom.write(
        "a.md", "---\ntitle: Port strike ends\ndate: 2026-11-25 09:00\nbeat: world\n---\nBody.\n"
    )
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=NOW - timedelta(hours=1))
    d = Daemon(cfg, store, clock=Clock(NOW))
    d.tick(NOW)  # collect + build, recorded in runs
    with store.begin() as conn:
        for addr in ("ok@example.com", "slow@example.com", "gone@example.com"):
            subs.add(cfg, conn, addr, newsletters=["daily"], now=NOW)
    messenger = FaultyOutbox(OutboxMessenger(newsroom.root / "outbox", store))
    report = send_newsletter(cfg, store, "daily", now=NOW, slot=SLOT, messenger=messenger)
    assert (report.sent, report.failed, report.bounced) == (1, 1, 1)
    store.close()
    return newsroom


def test_gather_status_reports_runs_editions_and_store(sent_room: Newsroom) -> None:
    cfg = sent_room.config()
    store = sent_room.store()
    st = gather_status(cfg, store, NOW)
    assert not st.daemon.running
    assert st.last_collect is not None and st.last_collect.ok
    assert st.last_collect.summary["counts"]["unchanged"] == 1
    assert st.last_build is not None and st.last_build.summary["written"] > 0
    [nl] = st.newsletters
    assert (nl.slug, nl.next_run_from) == ("daily", "cron")
    assert nl.next_run == datetime(2026, 11, 27, 7, tzinfo=UTC)
    assert nl.last_edition is not None and nl.last_edition.slot == "2026-11-26T07:00Z"
    [ed] = st.editions
    assert (ed.sent, ed.failed, ed.bounced, ed.pending) == (1, 1, 1, 0)
    assert ed.status == "sending"  # the temporary failure is retried later
    assert st.store.articles == 1 and st.store.subscribers == 3
    assert st.store.size_bytes is not None and st.store.size_bytes > 0
    assert st.generation == 1
    store.close()


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


def test_status_of_a_running_daemon_shows_its_pid_and_stored_next_run(
    sent_room: Newsroom,
) -> None:
    cfg = sent_room.config()
    d = Daemon(cfg, sent_room.store(), clock=Clock(NOW))
    d.start(paused=True)
    try:
        store = sent_room.store()
        st = gather_status(cfg, store, NOW)
        store.close()
    finally:
        assert d.stop(timeout=10)
        d.store.close()
    assert st.daemon.running and st.daemon.pid == os.getpid()
    assert st.newsletters[0].next_run_from == "daemon"
    assert st.newsletters[0].next_run == datetime(2026, 11, 27, 7, tzinfo=UTC)


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


def test_status_command_json_and_table(sent_room: Newsroom) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["--config", str(sent_room.config_path), "status", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["daemon"]["running"] is False
    assert data["editions"][0]["failed"] == 1 and data["editions"][0]["bounced"] == 1
    assert data["last_build"]["kind"] == "build"
    assert data["store"]["url"].startswith("sqlite:///")
    assert data["newsletters"][0]["next_run"].endswith("Z")

    res = runner.invoke(main, ["--config", str(sent_room.config_path), "status"])
    assert res.exit_code == 0, res.output
    for text in ("not running", "collect", "build", "daily", "2026-11-26T07:00Z", "sending"):
        assert text in res.output


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


def test_status_hides_a_store_password(newsroom: Newsroom) -> None:
    from feedpub.scheduler.daemon import redact_url

    assert (
        redact_url("postgresql://feedpub:s3cret@db/feedpub")
        == "postgresql://feedpub:***@db/feedpub"
    )


def test_status_shows_a_disabled_upstream_source(newsroom: Newsroom) -> None:
    from tests.upstream_http import UpstreamServer

    server = UpstreamServer().start()
    try:
        server.route("/gone.xml", status=410, body=b"gone")
        newsroom.set_config(
            f'[[sources]]\ntype = "feed"\nname = "gone"\nurl = "{server.url("/gone.xml")}"\n'
        )
        store = newsroom.store()
        collect(newsroom.config(), store, now=datetime(2026, 11, 26, tzinfo=UTC))
    finally:
        server.stop()
    result = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status", "--json"])
    assert result.exit_code == 0, result.output
    sources = {s["name"]: s for s in json.loads(result.output)["sources"]}
    assert sources["gone"]["status"] == "disabled"
    assert "410" in (sources["gone"]["disabled"] or "")
    assert sources["folder:content"]["status"] == "ok"
    table = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status"])
    assert "disabled" in table.output and "gone" in table.output


def test_status_counts_the_same_store_alike_on_postgresql(newsroom: Newsroom, pg_url: str) -> None:
    """Articles and published ones, subscribers and active ones: one pass over each table
    on PostgreSQL, two index counts on SQLite, the same numbers."""
    newsroom.write("a.md", "---\ntitle: Live\ndate: 2026-11-25 09:00\n---\nBody.\n")
    newsroom.write("b.md", "---\ntitle: Later\ndate: 2099-01-01 09:00\n---\nScheduled.\n")
    newsroom.write("c.md", "---\ntitle: Gone\ndate: 2026-11-24 09:00\n---\nBody.\n")
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=NOW)
    (newsroom.content / "c.md").unlink()
    collect(cfg, store, now=NOW)  # c.md retracted
    with store.begin() as conn:
        subs.add(cfg, conn, "one@example.com", newsletters=["daily"], now=NOW)
        subs.add(cfg, conn, "two@example.com", newsletters=["daily"], now=NOW)
        subs.add(cfg, conn, "three@example.com", newsletters=["daily"], now=NOW)
        subs.remove(conn, "two@example.com", newsletter=None, now=NOW)
    from feedpub.store import Store
    from feedpub.storecopy import copy_store

    copy_store(store, pg_url)
    lite = gather_status(cfg, store, NOW).store
    with Store(pg_url) as pg:
        on_pg = gather_status(cfg, pg, NOW).store
    store.close()
    assert (lite.articles, lite.published, lite.subscribers, lite.active_subscribers) == (
        3,
        1,
        3,
        2,
    )
    assert (on_pg.articles, on_pg.published, on_pg.subscribers, on_pg.active_subscribers) == (
        3,
        1,
        3,
        2,
    )
