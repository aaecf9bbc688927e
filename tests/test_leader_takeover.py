"""Several real ``feedpub run`` processes on one PostgreSQL store (tests/cluster.py): the
leader SIGKILLed in the middle of a build and in the middle of a freeze, and stopped with
SIGTERM. Another instance leads within the configured lease (plus one renewal round);
the feeds are complete; the owed slot is frozen exactly once and every subscriber gets
exactly one message.

"In the middle" is made certain, not hoped for: the test holds a table lock that the
leader's write needs (``feed_files`` for a build's record, ``editions`` for a freeze) and
kills the leader once PostgreSQL shows its transaction waiting on that lock, fence taken.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree

from feedpub import schema as s
from tests.cluster import Cluster

LEASE = 2  # seconds: takeover within LEASE + LEASE/3 of the last renewal
TAKEOVER_BOUND = 2 * LEASE + 10  # what the test waits before calling it a failure


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "room", pg_url, lease=LEASE)
    c.setup()
    yield c
    c.stop_all()


def _waiting_on(engine: sa.Engine, statement: str) -> bool:
    """Some backend is blocked on a lock while running ``statement`` (a prefix)."""
    with engine.connect() as conn:
        n = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE :q"
            ),
            {"q": statement + "%"},
        ).scalar()
    return bool(n)


def _edition_sent(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        statuses = conn.execute(
            sa.select(s.editions.c.status).where(s.editions.c.newsletter == "daily")
        ).scalars()
        return "sent" in set(statuses)


def _assert_sent_once(c: Cluster, engine: sa.Engine) -> None:
    c.wait_for(lambda: _edition_sent(engine), 60, step=0.2, name="the edition sent")
    with engine.connect() as conn:
        editions = conn.execute(
            sa.select(s.editions.c.id, s.editions.c.slot, s.editions.c.status)
        ).all()
        assert len(editions) == 1, editions  # the owed slot, frozen once
        assert editions[0].status == "sent"
        ledger = conn.execute(sa.select(s.deliveries.c.subscriber_id, s.deliveries.c.status)).all()
    assert len(ledger) == c.subscribers
    assert {r.status for r in ledger} == {"sent"}
    assert len({r.subscriber_id for r in ledger}) == c.subscribers
    files = list((c.root / "outbox").rglob("*.eml"))
    assert len(files) == c.subscribers  # one message per subscriber on disk


def _recorded_files(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(s.feed_files)).scalar_one())


def _assert_feeds_complete(c: Cluster, engine: sa.Engine) -> None:
    # The new leader's build records what it wrote (the killed one's record never landed).
    c.wait_for(lambda: _recorded_files(engine), 60, step=0.2, name="a recorded build")
    out = c.root / "feeds"
    for rel in ("rss.xml", "atom.xml", "feed.json", "index.html", "feeds.opml"):
        assert (out / rel).stat().st_size > 0, rel
    rss = etree.parse(str(out / "rss.xml"))
    titles = {t.text for t in rss.findall("./channel/item/title")}
    assert titles == {f"Story number {i}" for i in range(c.articles)}
    for beat in ("world", "technology"):
        assert etree.parse(str(out / "beats" / beat / "atom.xml")).getroot() is not None


def test_sigkill_in_the_middle_of_a_build_another_leads_and_the_feeds_complete(
    cluster: Cluster,
) -> None:
    engine = cluster.engine()
    try:
        with engine.connect() as blocker:
            blocker.execute(sa.text("LOCK TABLE feed_files IN EXCLUSIVE MODE"))
            cluster.start(2)
            first = cluster.wait_leader(engine, 30)
            # The leader wrote the feed files and now waits to record them (fence taken).
            cluster.wait_for(
                lambda: (
                    _waiting_on(engine, "INSERT INTO feed_files")
                    or _waiting_on(engine, "UPDATE feed_files")
                    or _waiting_on(engine, "DELETE FROM feed_files")
                ),
                30,
                name="the leader's build blocked on its record",
            )
            cluster.proc(first.pid).send_signal(signal.SIGKILL)
            cluster.proc(first.pid).wait(10)
            blocker.rollback()  # the killed transaction is gone; let the next one through
        second = cluster.wait_leader(engine, TAKEOVER_BOUND, other_than=first.pid)
        assert second.token == first.token + 1
        _assert_feeds_complete(cluster, engine)
        _assert_sent_once(cluster, engine)
    finally:
        engine.dispose()


def test_sigkill_in_the_middle_of_a_freeze_the_slot_is_frozen_once_and_sent_once(
    cluster: Cluster,
) -> None:
    engine = cluster.engine()
    try:
        with engine.connect() as blocker:
            blocker.execute(sa.text("LOCK TABLE editions IN EXCLUSIVE MODE"))
            cluster.start(2)
            first = cluster.wait_leader(engine, 30)
            cluster.wait_for(
                lambda: _waiting_on(engine, "INSERT INTO editions"),
                30,
                name="the leader's freeze blocked on its insert",
            )
            cluster.proc(first.pid).send_signal(signal.SIGKILL)
            cluster.proc(first.pid).wait(10)
            blocker.rollback()
        second = cluster.wait_leader(engine, TAKEOVER_BOUND, other_than=first.pid)
        assert second.token == first.token + 1
        _assert_sent_once(cluster, engine)
        _assert_feeds_complete(cluster, engine)
    finally:
        engine.dispose()


def test_sigterm_hands_the_lease_over_and_exits_cleanly(cluster: Cluster) -> None:
    engine = cluster.engine()
    try:
        cluster.start(2)
        first = cluster.wait_leader(engine, 30)
        _assert_sent_once(cluster, engine)
        leader = cluster.proc(first.pid)
        leader.send_signal(signal.SIGTERM)
        assert leader.wait(30) == 0
        # Released, not left to expire: the other takes it at its next round.
        second = cluster.wait_leader(engine, TAKEOVER_BOUND, other_than=first.pid)
        assert second.token == first.token + 1
        assert "stopped leading" in cluster.logs()
        # A subprocess: it reads the real clock, as the daemons do (even under --wall-clock).
        shown = subprocess.run(
            [sys.executable, "-m", "feedpub", "--config", str(cluster.config_path), "status"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        ).stdout
        assert f"leader {second.holder} on {second.host} (pid {second.pid}" in shown
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar() == 1
    finally:
        engine.dispose()
