"""Operator review: bugs found running feedpub as in production, each pinned by a test."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from click.testing import CliRunner

from feedpub.cli import main
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.digest.send import cancel_unsubscribed
from feedpub.scheduler.daemon import Daemon
from feedpub.status import gather_status
from tests.conftest import Newsroom
from tests.test_scheduler_daemon import Clock
from tests.test_status import NOW, SLOT, sent_room  # noqa: F401  (fixture)


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
