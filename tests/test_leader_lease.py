"""The leader lease (feedpub.leases, scheduler.leader) with injected ``now`` and an
injected monotonic clock, on real PostgreSQL (and SQLite for the plain compare-and-swap):
one holder at a time, takeover only after expiry, a superseded token fenced off, a leader
that cannot renew stepping down before its lease expires, a freeze fenced by the lease."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import leases
from feedpub import schema as s
from feedpub.leases import Identity, NotLeader
from feedpub.scheduler.leader import InstanceLoop, Leadership
from feedpub.store import Store

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)
A = Identity("instance-a", "host-a", 101)
B = Identity("instance-b", "host-b", 202)


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'lease.db'}"
    st = Store(url)
    yield st
    st.close()


def _acquire(store: Store, me: Identity, token: int | None, now: datetime) -> int | None:
    with store.begin() as conn:
        return leases.acquire(conn, "leader", me, token, LEASE, now)


def test_one_holder_until_the_lease_expires_then_the_other_takes_it(store: Store) -> None:
    a = _acquire(store, A, None, NOW)
    assert a == 1
    assert _acquire(store, B, None, NOW + LEASE - timedelta(seconds=1)) is None
    assert _acquire(store, A, a, NOW + timedelta(seconds=5)) == a  # renewed to 5 s + lease
    assert _acquire(store, B, None, NOW + LEASE) is None  # the renewal moved the expiry
    b = _acquire(store, B, None, NOW + timedelta(seconds=5) + LEASE)
    assert b == 2  # a new term: a new fencing token
    assert _acquire(store, A, a, NOW + timedelta(seconds=21)) is None  # A lost it
    with store.read() as conn:
        row = leases.current(conn, "leader")
    assert row is not None and row.holder == B.instance and row.host == "host-b"
    assert row.pid == 202 and row.token == 2 and row.since == NOW + timedelta(seconds=20)


def test_release_hands_over_at_once(store: Store) -> None:
    a = _acquire(store, A, None, NOW)
    assert a is not None
    with store.begin() as conn:
        assert leases.release(conn, "leader", A, a, NOW + timedelta(seconds=1))
    assert _acquire(store, B, None, NOW + timedelta(seconds=1)) == a + 1


def test_the_fence_refuses_a_superseded_or_expired_token(store: Store) -> None:
    a = _acquire(store, A, None, NOW)
    assert a is not None
    with store.begin() as conn:
        leases.check(conn, "leader", A, a, NOW + timedelta(seconds=14))  # still ours
    with store.begin() as conn, pytest.raises(NotLeader, match="expired"):
        leases.check(conn, "leader", A, a, NOW + LEASE)
    b = _acquire(store, B, None, NOW + LEASE)
    assert b is not None
    with store.begin() as conn, pytest.raises(NotLeader, match="no longer holds"):
        leases.check(conn, "leader", A, a, NOW + LEASE)
    with store.begin() as conn:
        leases.check(conn, "leader", B, b, NOW + LEASE)


def test_racing_instances_on_postgresql_elect_exactly_one(pg_url: str) -> None:
    st = Store(pg_url)
    try:
        st.migrate()
        won: list[Identity] = []
        gate = threading.Barrier(6)

        def race(me: Identity) -> None:
            gate.wait()
            if _acquire(st, me, None, NOW) is not None:
                won.append(me)

        racers = [Identity(f"i{n}", "h", n) for n in range(6)]
        threads = [threading.Thread(target=race, args=(me,)) for me in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
    finally:
        st.close()


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class WallClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _leadership(
    store: Store, me: Identity, mono: Mono, clock: WallClock, log: list[str]
) -> Leadership:
    return Leadership(
        store,
        LEASE,
        clock=clock,
        on_lead=lambda: log.append(f"lead {me.instance}"),
        on_follow=lambda why: log.append(f"follow {me.instance}: {why}"),
        identity=me,
        monotonic=mono,
    )


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Store]:
    """The Leadership state machine does not depend on the backend (the statements it
    runs are the ones tested on both above): SQLite keeps these fast."""
    st = Store(f"sqlite:///{tmp_path / 'lease.db'}")
    yield st
    st.close()


def test_a_leader_that_cannot_renew_stops_before_its_lease_expires(lite: Store) -> None:
    store = lite
    mono, clock, log = Mono(), WallClock(NOW), []
    a = _leadership(store, A, mono, clock, log)
    assert a.step() and a.leading() and log == ["lead instance-a"]
    assert a.renew_every == 5.0 and a.give_up_after < LEASE.total_seconds()
    # Renewals every third of the lease keep it.
    for _ in range(3):
        mono.t += 5
        clock.now += timedelta(seconds=5)
        assert a.step()
    with store.read() as conn:
        row = leases.current(conn, "leader")
    assert row is not None and row.expires == clock.now + LEASE
    # Then the store stops answering: no renewal. At the give-up point the watchdog ends
    # the term, while the stored lease still has time left: nobody else could lead yet.
    mono.t += a.give_up_after - 0.01
    clock.now += timedelta(seconds=a.give_up_after - 0.01)
    a.watch()
    assert a.leading()
    mono.t += 0.02
    clock.now += timedelta(seconds=0.02)
    a.watch()
    assert not a.leading()
    assert log[-1] == "follow instance-a: could not renew the lease in time"
    assert row.expires > clock.now  # stepped down before expiry
    assert _acquire(store, B, None, clock.now) is None
    with store.begin() as conn, pytest.raises(NotLeader):
        a.fence(conn)


def test_a_standby_takes_over_after_expiry_and_the_old_term_is_fenced(lite: Store) -> None:
    store = lite
    mono, clock, log = Mono(), WallClock(NOW), []
    a = _leadership(store, A, mono, clock, log)
    b = _leadership(store, B, mono, clock, log)
    assert a.step()
    assert not b.step()
    old = a.token
    clock.now += LEASE  # A is frozen (no renewal, no watchdog): its lease runs out
    assert b.step() and b.leading()
    assert b.token == (old or 0) + 1
    # A wakes up with its deadline not yet passed on its own clock: its renewal fails, it
    # steps down, and its fence refuses even before that.
    with store.begin() as conn, pytest.raises(NotLeader):
        leases.check(conn, "leader", A, old or 0, clock.now)
    assert not a.step()
    assert log == [
        "lead instance-a",
        "lead instance-b",
        "follow instance-a: the lease was taken over or released",
    ]
    with store.begin() as conn:
        b.fence(conn)


def test_a_new_freeze_needs_the_lease_and_a_slot_is_frozen_once(newsroom: object) -> None:
    from feedpub.digest.freeze import freeze
    from tests.conftest import Newsroom

    assert isinstance(newsroom, Newsroom)
    cfg = newsroom.config()
    st = newsroom.store()
    try:
        st.migrate()
        mono, clock, log = Mono(), WallClock(NOW), []
        a = _leadership(st, A, mono, clock, log)
        b = _leadership(st, B, mono, clock, log)
        assert a.step()
        nl = cfg.newsletter("daily")
        clock.now += LEASE
        assert b.step()  # A's term is over (it does not know yet)
        with pytest.raises(NotLeader):
            freeze(cfg, st, nl, "2026-11-26T07:00Z", NOW, a.fence)
        with st.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar() == 0
        first, created = freeze(cfg, st, nl, "2026-11-26T07:00Z", NOW, b.fence)
        again, created_again = freeze(cfg, st, nl, "2026-11-26T07:00Z", NOW, a.fence)
        assert created and not created_again and again == first  # found, not frozen twice
    finally:
        st.close()


def test_instance_work_runs_only_while_active() -> None:
    ran: list[datetime] = []
    active = [True]
    loop = InstanceLoop(
        [ran.append], timedelta(seconds=60), clock=lambda: NOW, active=lambda: active[0]
    )
    loop.run_once()
    active[0] = False
    loop.run_once()
    assert ran == [NOW]


def test_sqlite_keeps_one_daemon_per_store_and_says_so(newsroom: object) -> None:
    from feedpub.errors import LockedError
    from feedpub.scheduler.daemon import Daemon
    from tests.conftest import Newsroom

    assert isinstance(newsroom, Newsroom)
    first = Daemon(newsroom.config(), newsroom.store(), clock=WallClock(NOW))
    second = Daemon(newsroom.config(), newsroom.store(), clock=WallClock(NOW))
    assert first.leadership is None and first.lock is not None  # no lease on SQLite
    first.start(paused=True)
    try:
        with pytest.raises(LockedError, match=r"SQLite store runs one daemon.*PostgreSQL"):
            second.start(paused=True)
    finally:
        first.stop(timeout=10)
        first.store.close()
        second.store.close()


def test_two_freezes_of_one_slot_racing_on_postgresql_give_one_edition(
    newsroom: object, pg_url: str
) -> None:
    """What makes a takeover unable to double a slot even without the fence: the edition
    is unique per (newsletter, slot); the loser of the race finds the winner's edition."""
    from feedpub.digest import subscribers as subs
    from feedpub.digest.freeze import freeze
    from tests.conftest import Newsroom

    assert isinstance(newsroom, Newsroom)
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('url = "sqlite:///feedpub.db"', f'url = "{pg_url}"'), encoding="utf-8"
    )
    newsroom.write("a.md", "---\ntitle: Kyiv\ndate: 2026-11-26 10:00\nbeat: world\n---\nB.\n")
    cfg = newsroom.config()
    st = newsroom.store()
    try:
        from feedpub.collect import collect

        collect(cfg, st, now=NOW)
        with st.begin() as conn:
            for i in range(50):
                subs.add(cfg, conn, f"r{i}@example.com", newsletters=["daily"], now=NOW)
        nl = cfg.newsletter("daily")
        results: list[tuple[int, bool]] = []
        gate = threading.Barrier(4)

        def race() -> None:
            gate.wait()
            results.append(freeze(cfg, st, nl, "2026-11-26T07:00Z", NOW))

        threads = [threading.Thread(target=race) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({r[0] for r in results}) == 1
        assert sorted(r[1] for r in results) == [False, False, False, True]
        with st.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar() == 1
            rows = conn.execute(sa.select(sa.func.count()).select_from(s.deliveries)).scalar()
        assert rows == 50
    finally:
        st.close()


def test_on_postgresql_only_the_leader_builds_and_every_instance_runs_the_instance_work(
    newsroom: object, pg_url: str
) -> None:
    from feedpub.scheduler.daemon import Daemon
    from tests.conftest import Newsroom

    assert isinstance(newsroom, Newsroom)
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('url = "sqlite:///feedpub.db"', f'url = "{pg_url}"'), encoding="utf-8"
    )
    newsroom.write("a.md", "---\ntitle: Kyiv\ndate: 2026-11-26 10:00\nbeat: world\n---\nB.\n")
    clock = WallClock(NOW)
    one = Daemon(newsroom.config(), newsroom.store(), clock=clock)
    two = Daemon(newsroom.config(), newsroom.store(), clock=clock)
    ran: list[str] = []
    for name, d in (("one", one), ("two", two)):
        assert d.lock is None and d.leadership is not None  # no daemon lock on PostgreSQL
        d.instance_work.append(lambda now, name=name: ran.append(name))
        d.start(paused=True)
    try:
        assert one.leadership is not None and two.leadership is not None
        from feedpub.status import daemon_info

        nobody = daemon_info(one.config, one.store, NOW)
        assert not nobody.running and nobody.leader is None and nobody.lock == "lease:leader"
        assert one.leadership.step() and not two.leadership.step()
        assert one.is_leader() and not two.is_leader()
        shown = daemon_info(one.config, one.store, NOW)
        assert shown.running and shown.leader is not None
        assert shown.leader.instance == one.leadership.me.instance and shown.leader.token == 1
        assert shown.leader.expires == "2026-11-26T07:00:15Z"
        two.tick(NOW)  # a standby's tick does nothing
        with two.store.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(s.runs)).scalar() == 0
        one.tick(NOW)  # the leader collects, builds, then runs the instance work
        with one.store.read() as conn:
            kinds = set(conn.execute(sa.select(s.runs.c.kind)).scalars())
        assert {"collect", "build"} <= kinds
        assert (newsroom.root / "feeds" / "rss.xml").exists()
        one.instance_loop.run_once(NOW)  # the leader's loop stays idle (its tick did it)
        two.instance_loop.run_once(NOW)  # a standby's loop runs the work
        assert ran == ["one", "two"]
    finally:
        for d in (one, two):
            d.stop(timeout=10)
            d.store.close()


def test_store_migrate_refuses_a_postgresql_store_whose_instances_run(
    newsroom: object, pg_url: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from feedpub.cli import main
    from tests.conftest import Newsroom

    assert isinstance(newsroom, Newsroom)
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('url = "sqlite:///feedpub.db"', f'url = "{pg_url}"'), encoding="utf-8"
    )
    st = newsroom.store()
    try:
        assert _acquire(st, A, None, datetime.now(UTC)) is not None  # the clock the CLI reads
    finally:
        st.close()
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    r = CliRunner().invoke(
        main, ["--config", str(newsroom.config_path), "store", "migrate", "--to", target]
    )
    assert r.exit_code == 2, r.output
    assert "leader instance-a on host-a" in r.output and "stop every instance" in r.output
    assert not (tmp_path / "copy.db").exists()


def test_a_takeover_waits_for_the_holders_fenced_transaction_but_its_renewals_do_not(
    pg_url: str,
) -> None:
    st = Store(pg_url)
    try:
        a = _acquire(st, A, None, NOW)
        assert a is not None
        with st.begin() as fenced:  # e.g. a freeze in progress
            leases.check(fenced, "leader", A, a, NOW + timedelta(seconds=1))
            with st.begin() as renew:
                renew.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
                assert leases.acquire(renew, "leader", A, a, LEASE, NOW + timedelta(seconds=2))
            with (
                pytest.raises(sa.exc.OperationalError, match="lock timeout"),
                st.begin() as take,
            ):
                take.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
                leases.acquire(take, "leader", B, None, LEASE, NOW + timedelta(minutes=1))
        assert _acquire(st, B, None, NOW + timedelta(minutes=1)) == a + 1  # once it ended
    finally:
        st.close()
