"""The delivery ledger, the sending manager and the outbox backend (real SQLite, real files).

A paused or crashed edition is resumed, not frozen again (a manual ``--extra`` one too);
what changed since the freeze (an unsubscribe, a retraction) is honoured on resume."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.clock import running_from
from feedpub.delivery.base import OutgoingMessage
from feedpub.delivery.manager import DeliveryManager
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.digest import send_newsletter
from feedpub.digest.freeze import freeze
from feedpub.errors import PermanentDeliveryError, ServerUnavailableError, TemporaryDeliveryError
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.test_digest_support import NOW, article, hours_ago, put, subscribe


class Recorder:
    """A messenger that writes to the outbox and records each send; can be told to fail."""

    def __init__(self, outbox: OutboxMessenger) -> None:
        self.outbox = outbox
        self.sent: list[OutgoingMessage] = []
        self.fail: dict[str, Exception] = {}
        self.during_send = None  # callable run inside send (simulates a second process)

    def send(self, message: OutgoingMessage) -> None:
        if self.during_send is not None:
            hook, self.during_send = self.during_send, None
            hook()
        err = self.fail.get(message.recipient)
        if err is not None:
            raise err
        self.outbox.send(message)
        self.sent.append(message)

    def close(self) -> None:
        pass


def _setup(newsroom: Newsroom, n: int = 3) -> tuple[Store, Recorder]:
    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)), article(2, "technology", hours_ago(3)))
    for i in range(n):
        subscribe(cfg, store, f"reader{i}@example.com")
    return store, Recorder(OutboxMessenger(newsroom.root / "outbox", store))


def _ledger(store: Store) -> dict[str, str]:
    with store.read() as conn:
        return {r.email: r.status for r in conn.execute(sa.select(s.deliveries))}


def _edition_status(store: Store) -> str:
    with store.read() as conn:
        return str(conn.execute(sa.select(s.editions.c.status)).scalar_one())


def test_outbox_writes_one_eml_per_subscriber_and_rerun_sends_nothing(newsroom: Newsroom) -> None:
    store, rec = _setup(newsroom)
    cfg = newsroom.config()
    r = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert (r.status, r.sent, r.recipients, r.created) == ("sent", 3, 3, True)
    files = sorted((newsroom.root / "outbox" / "daily" / "2026-11-26T0700Z").glob("*.eml"))
    assert [f.name for f in files] == ["1.eml", "2.eml", "3.eml"]
    for f in files:
        data = f.read_bytes()
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # policy.SMTP
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec.startswith("reader")
    assert set(_ledger(store).values()) == {"sent"}
    # the same slot again (a manual send after the scheduler, or a rerun): nothing sent
    again = send_newsletter(cfg, store, "daily", now=NOW + timedelta(minutes=5), messenger=rec)
    assert (again.created, again.sent, again.status) == (False, 0, "sent")
    assert len(rec.sent) == 3


def test_crash_mid_send_resumes_without_skipping_or_resending(newsroom: Newsroom) -> None:
    store, rec = _setup(newsroom, n=4)
    cfg = newsroom.config()
    nl = cfg.newsletter("daily")
    _, created = freeze(cfg, store, nl, "2026-11-26T07:00Z", NOW)
    assert created
    # A crashed sender: reader0 sent, reader1 in flight ("sending"), the rest queued.
    d = s.deliveries
    with store.begin() as conn:
        conn.execute(sa.update(d).where(d.c.email == "reader0@example.com").values(status="sent"))
        conn.execute(
            sa.update(d)
            .where(d.c.email == "reader1@example.com")
            .values(status="sending", updated=NOW - timedelta(minutes=10))
        )
    r = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert not r.created
    assert sorted(m.recipient for m in rec.sent) == [
        "reader1@example.com",  # the in-flight one is resent (at most it duplicates)
        "reader2@example.com",
        "reader3@example.com",
    ]
    assert set(_ledger(store).values()) == {"sent"}
    assert _edition_status(store) == "sent"


def test_two_drainers_never_send_one_row_twice(newsroom: Newsroom) -> None:
    store, rec = _setup(newsroom, n=5)
    cfg = newsroom.config()
    edition_id, _ = freeze(cfg, store, cfg.newsletter("daily"), "2026-11-26T07:00Z", NOW)
    other = Recorder(rec.outbox)

    def compose_fn(row):  # type: ignore[no-untyped-def]
        return OutgoingMessage(row.edition_id, row.subscriber_id, "a@b", row.email, "x", b"x")

    second = DeliveryManager(store, other, clock=running_from(NOW))
    # While the first process sends its first message, a second one drains everything.
    rec.during_send = lambda: second.deliver(edition_id, compose_fn)
    first = DeliveryManager(store, rec, clock=running_from(NOW)).deliver(edition_id, compose_fn)
    got = [m.recipient for m in rec.sent] + [m.recipient for m in other.sent]
    assert sorted(got) == sorted(f"reader{i}@example.com" for i in range(5))
    assert len(got) == len(set(got))
    assert first.skipped == 4  # the second process had claimed and sent them
    assert first.edition_status == "sent"


def test_temporary_failure_is_retried_later_and_edition_not_sent_meanwhile(
    newsroom: Newsroom,
) -> None:
    store, rec = _setup(newsroom)
    cfg = newsroom.config()
    rec.fail["reader1@example.com"] = TemporaryDeliveryError("451 try later")
    r = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert (r.sent, r.failed, r.status, r.remaining) == (2, 1, "sending", 1)
    with store.read() as conn:
        row = conn.execute(
            sa.select(s.deliveries).where(s.deliveries.c.email == "reader1@example.com")
        ).one()
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "451 try later")
    assert row.next_attempt is not None
    assert not (newsroom.root / "feeds" / "newsletters" / "daily" / "index.html").exists()
    del rec.fail["reader1@example.com"]
    edition_id = r.edition_id
    assert edition_id is not None
    # not due yet: nothing happens
    early = DeliveryManager(store, rec, clock=lambda: row.next_attempt - timedelta(seconds=1))
    assert early.deliver(edition_id, lambda x: _msg(x)).sent == 0
    late = DeliveryManager(store, rec, clock=lambda: row.next_attempt + timedelta(seconds=1))
    rep = late.deliver(edition_id, lambda x: _msg(x))
    assert (rep.sent, rep.edition_status) == (1, "sent")


def _msg(row) -> OutgoingMessage:  # type: ignore[no-untyped-def]
    return OutgoingMessage(row.edition_id, row.subscriber_id, "a@b", row.email, "m", b"data\r\n")


def test_permanent_failure_bounces_row_and_subscriber(newsroom: Newsroom) -> None:
    store, rec = _setup(newsroom)
    rec.fail["reader2@example.com"] = PermanentDeliveryError("550 no such user")
    r = send_newsletter(newsroom.config(), store, "daily", now=NOW, messenger=rec)
    assert (r.sent, r.bounced, r.status) == (2, 1, "sent")  # bounced rows are done
    assert _ledger(store)["reader2@example.com"] == "bounced"
    with store.read() as conn:
        sub = conn.execute(
            sa.select(s.subscribers).where(s.subscribers.c.email == "reader2@example.com")
        ).one()
    assert (sub.status, sub.hard_bounces) == ("bounced", 1)


def test_server_unavailable_pauses_then_resumes(newsroom: Newsroom) -> None:
    store, rec = _setup(newsroom)
    cfg = newsroom.config()
    rec.fail["reader1@example.com"] = ServerUnavailableError("connection refused")
    r = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert (r.status, r.sent) == ("paused", 1)
    assert _edition_status(store) == "paused"
    assert _ledger(store) == {
        "reader0@example.com": "sent",
        "reader1@example.com": "queued",  # put back untouched, not counted as an attempt
        "reader2@example.com": "queued",
    }
    rec.fail.clear()
    r2 = send_newsletter(cfg, store, "daily", now=NOW + timedelta(hours=1), messenger=rec)
    assert (r2.status, r2.sent, r2.created) == ("sent", 2, False)
    assert [m.recipient for m in rec.sent].count("reader0@example.com") == 1


def test_outbox_file_is_rewritten_identically_on_resend(newsroom: Newsroom, tmp_path: Path) -> None:
    store, rec = _setup(newsroom, n=1)
    send_newsletter(newsroom.config(), store, "daily", now=NOW, messenger=rec)
    path = newsroom.root / "outbox" / "daily" / "2026-11-26T0700Z" / "1.eml"
    before = path.read_bytes()
    rec.outbox.send(rec.sent[0])
    assert path.read_bytes() == before
    assert list(path.parent.glob(".*.tmp")) == []


def test_unsubscribe_after_freeze_is_honoured_on_resume(newsroom: Newsroom) -> None:
    from feedpub.digest import subscribers as subs

    store, rec = _setup(newsroom)
    cfg = newsroom.config()
    rec.fail["reader0@example.com"] = ServerUnavailableError("down")
    assert send_newsletter(cfg, store, "daily", now=NOW, messenger=rec).status == "paused"
    with store.begin() as conn:
        subs.remove(conn, "reader2@example.com", newsletter="daily", now=NOW)
    rec.fail.clear()
    r = send_newsletter(cfg, store, "daily", now=NOW + timedelta(hours=1), messenger=rec)
    assert r.status == "sent"
    assert sorted(m.recipient for m in rec.sent) == ["reader0@example.com", "reader1@example.com"]
    assert _ledger(store)["reader2@example.com"] == "cancelled"


def test_interrupted_extra_edition_is_resumed_by_the_next_extra_send(newsroom: Newsroom) -> None:
    """A manual edition's key is the time of the send; before the fix a rerun of
    ``digest send --extra`` froze a new (empty, skipped) edition instead, and the paused
    or crashed one was never finished: its queued subscribers were lost."""
    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)))
    for i in range(3):
        subscribe(cfg, store, f"reader{i}@example.com")
    rec = Recorder(OutboxMessenger(newsroom.root / "outbox", store))
    rec.fail["reader1@example.com"] = ServerUnavailableError("relay down")
    first = send_newsletter(cfg, store, "daily", now=NOW, extra=True, messenger=rec)
    assert first.status == "paused" and first.sent == 1
    rec.fail.clear()
    again = send_newsletter(
        cfg, store, "daily", now=NOW + timedelta(minutes=5), extra=True, messenger=rec
    )
    assert (again.slot, again.created, again.status) == (first.slot, False, "sent")
    assert sorted(m.recipient for m in rec.sent) == [f"reader{i}@example.com" for i in range(3)]
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar_one() == 1
    # finished: the next --extra is a new edition (nothing new here: skipped)
    third = send_newsletter(
        cfg, store, "daily", now=NOW + timedelta(minutes=9), extra=True, messenger=rec
    )
    assert third.created and third.slot != first.slot and third.status == "skipped"


def test_a_story_retracted_while_the_edition_was_paused_is_not_sent(newsroom: Newsroom) -> None:
    """The relay was down when the edition froze; an editor then retracts a story. The
    resumed edition must not mail it, and a reader whose only story it was gets nothing."""
    from feedpub.types import ArticleStatus

    cfg = newsroom.config()
    store = newsroom.store()
    keep = article(1, "world", hours_ago(2), title="Kept story")
    gone = article(2, "technology", hours_ago(3), title="Retracted story")
    put(store, keep, gone)
    subscribe(cfg, store, "all@example.com")
    subscribe(cfg, store, "tech@example.com", beats="technology")
    rec = Recorder(OutboxMessenger(newsroom.root / "outbox", store))
    for who in ("all@example.com", "tech@example.com"):
        rec.fail[who] = ServerUnavailableError("relay down")
    first = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert first.status == "paused" and first.sent == 0
    with store.begin() as conn:
        store.set_status(conn, gone.id, ArticleStatus.RETRACTED, 2)
    rec.fail.clear()
    again = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert again.status == "sent"
    assert [m.recipient for m in rec.sent] == ["all@example.com"]
    msg = email.message_from_bytes(rec.sent[0].data, policy=email.policy.default)
    text = msg.get_body(("plain",))
    assert text is not None
    body = str(text.get_content())  # type: ignore[attr-defined]
    assert "Kept story" in body and "Retracted story" not in body
    with store.read() as conn:
        status = dict(conn.execute(sa.select(s.deliveries.c.email, s.deliveries.c.status)).all())
    assert status == {"all@example.com": "sent", "tech@example.com": "cancelled"}
