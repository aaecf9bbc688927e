"""Editions always finish: an unfinished edition (manual or scheduled) is finished or resumed
by the next ``digest send`` of its newsletter or by the daemon's next tick.

Before: SIGKILL just after the last row of a ``--extra`` edition was marked sent left it
``sending`` forever with no archive page; the next ``--extra`` froze a new, skipped edition
instead of finishing it; the daemon never retried the failed rows of manual editions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema as s
from feedpub.cli import main
from feedpub.collect import collect
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.errors import TemporaryDeliveryError
from feedpub.scheduler.daemon import Daemon
from feedpub.store import Store
from tests.conftest import Newsroom, real_now
from tests.smtpserver import SmtpTestServer
from tests.test_digest_delivery import Recorder
from tests.test_smtp_delivery import make_room

# The CLI runs in this process and reads its wall clock (moved by make test-future).
T0 = datetime.now(UTC).replace(microsecond=0)


def _editions(store: Store) -> list[tuple[str, str]]:
    with store.read() as conn:
        q = sa.select(s.editions.c.slot, s.editions.c.status).order_by(s.editions.c.id)
        return [(r.slot, r.status) for r in conn.execute(q)]


def _archive(root: Path, slot: str) -> Path:
    from feedpub.delivery.outbox import edition_key

    return root / "feeds" / "newsletters" / "daily" / f"{edition_key(slot)}.html"


def _killed_after_last_sent_mark(store: Store, root: Path, slot: str) -> None:
    """The state SIGKILL just after the last sent-mark leaves: every row sent, the edition
    still 'sending', no archive page."""
    with store.begin() as conn:
        conn.execute(sa.update(s.editions).values(status="sending", finished=None))
    _archive(root, slot).unlink()


@pytest.fixture
def room(newsroom: Newsroom) -> Iterator[tuple[Newsroom, Store]]:
    dated = (T0 - timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S+00:00")
    newsroom.write(
        "kyiv.md",
        f"---\ntitle: Kyiv schools move underground\ndate: {dated}\nbeat: world\n---\nBody.\n",
    )
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=T0)
    with store.begin() as conn:
        for i in range(3):
            subs.add(cfg, conn, f"reader{i}@example.com", newsletters=["daily"], now=T0)
    yield newsroom, store
    store.close()


def _cli(newsroom: Newsroom, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "digest", *args])
    return r.exit_code, r.output


def test_the_next_extra_finishes_an_extra_edition_killed_after_its_last_sent_mark(
    room: tuple[Newsroom, Store],
) -> None:
    newsroom, store = room
    code, out = _cli(newsroom, "send", "daily", "--extra", "--no-progress")
    assert code == 0, out
    [(slot, status)] = _editions(store)
    assert slot.startswith("manual-") and status == "sent"
    _killed_after_last_sent_mark(store, newsroom.root, slot)

    code, out = _cli(newsroom, "send", "daily", "--extra", "--no-progress")
    assert code == 0, out
    assert _editions(store) == [(slot, "sent")]  # finished, no new skipped edition
    assert _archive(newsroom.root, slot).exists()
    assert f"slot {slot}, existing edition): sent" in out
    assert len(list((newsroom.root / "outbox").rglob("*.eml"))) == 3  # nobody mailed twice


def test_a_scheduled_send_finishes_an_unfinished_extra_edition_first(
    room: tuple[Newsroom, Store],
) -> None:
    newsroom, store = room
    assert _cli(newsroom, "send", "daily", "--extra", "--no-progress")[0] == 0
    [(manual, _)] = _editions(store)
    _killed_after_last_sent_mark(store, newsroom.root, manual)
    code, out = _cli(newsroom, "send", "daily", "--no-progress")
    assert code == 0, out
    editions = _editions(store)
    assert editions[0] == (manual, "sent") and _archive(newsroom.root, manual).exists()
    assert len(editions) == 2 and not editions[1][0].startswith("manual-")
    assert out.index(manual) < out.index(editions[1][0])  # reported first


def test_the_daemon_retries_failed_rows_of_a_manual_edition(room: tuple[Newsroom, Store]) -> None:
    newsroom, store = room
    cfg = newsroom.config()
    now = T0
    rec = Recorder(OutboxMessenger(newsroom.root / "outbox", store))
    rec.fail["reader1@example.com"] = TemporaryDeliveryError("451 mailbox busy")
    first = send_newsletter(cfg, store, "daily", now=now, extra=True, messenger=rec)
    assert (first.status, first.sent, first.failed) == ("sending", 2, 1)

    d = Daemon(cfg, store, clock=lambda: now)
    d.start(paused=True)
    try:
        assert d.due_editions(now) == []  # the retry is not due yet
        later = now + timedelta(minutes=2)  # retry_base is one minute
        assert d.due_editions(later) == [("daily", first.slot)]
        d.tick(later)
    finally:
        d.stop(timeout=10)
    assert _editions(store) == [(first.slot, "sent")]
    assert _archive(newsroom.root, first.slot).exists()
    with store.read() as conn:
        row = conn.execute(
            sa.select(s.deliveries).where(s.deliveries.c.email == "reader1@example.com")
        ).one()
    assert (row.status, row.attempts) == ("sent", 2)


def test_the_daemon_finishes_a_manual_edition_that_owes_nothing_whatever_its_age(
    room: tuple[Newsroom, Store],
) -> None:
    newsroom, store = room
    cfg = newsroom.config()
    now = T0
    first = send_newsletter(cfg, store, "daily", now=now, extra=True)
    _killed_after_last_sent_mark(store, newsroom.root, first.slot)
    much_later = now + timedelta(days=30)  # far beyond the resume window
    d = Daemon(cfg, store, clock=lambda: much_later)
    d.start(paused=True)
    try:
        d.tick(much_later)
    finally:
        d.stop(timeout=10)
    assert _editions(store)[0] == (first.slot, "sent")
    assert _archive(newsroom.root, first.slot).exists()


@pytest.mark.parametrize("when", ["before the last reply", "after the last reply went out"])
def test_sigkill_at_the_last_message_of_an_extra_edition_then_extra_finishes_it(
    newsroom: Newsroom, when: str
) -> None:
    """The real thing: the relay SIGKILLs ``digest send --extra`` at its last message,
    before the 250 (the row stays 'sending' under the dead sender's claim) or after the
    250 went out but before the sender could act on it (the relay has the message, the
    ledger does not know); the next ``--extra`` finishes the same edition at once: archive
    page written, nobody lost, no new edition.

    The second case stops the sender (SIGSTOP) while the relay still holds the reply, lets
    the 250 go out, then kills it: a kill timed a few milliseconds after the reply raced the
    sender, which on a fast run had already finished the edition. The case where the
    sent-mark landed and the process died before finishing is pinned in-process above."""
    n = 3
    with SmtpTestServer() as srv:
        store, emails = make_room(newsroom, srv.port, n, now=real_now(), pool_size=1)
        cmd = [sys.executable, "-m", "feedpub", "--config", str(newsroom.config_path),
               "digest", "send", "daily", "--extra", "--no-progress"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)

        def on_data(kept: int) -> None:
            if kept == n and when.startswith("before"):  # the server holds the message
                proc.send_signal(signal.SIGKILL)
            elif kept == n:  # frozen before it reads the 250, killed once the 250 is out
                proc.send_signal(signal.SIGSTOP)
                threading.Timer(0.2, proc.send_signal, (signal.SIGKILL,)).start()

        srv.on_data = on_data
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        srv.on_data = None
        [(slot, status)] = _editions(store)
        assert status == "sending" and not _archive(newsroom.root, slot).exists()
        again = subprocess.run(cmd, capture_output=True, timeout=60, env=os.environ)
        assert again.returncode == 0, (again.stdout + again.stderr).decode()
        got = srv.by_recipient()
    assert _editions(store) == [(slot, "sent")]
    assert _archive(newsroom.root, slot).exists()
    assert all(len(got.get(e, [])) >= 1 for e in emails)
    assert sum(len(v) for v in got.values()) <= n + 1  # at most the one in flight twice
    store.close()
