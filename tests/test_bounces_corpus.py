"""Bounce ingest against a corpus written from the RFCs and public examples
(tests/data/bounces/README.md): each message gives the right kind and action, ingesting
twice changes nothing, mail that is not ours is never touched, decisions can be undone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema as s
from feedpub.bounces.ingest import ingest
from feedpub.bounces.sources import Maildir, RawMessage
from feedpub.cli import main
from feedpub.config import Config
from feedpub.digest import send_newsletter
from feedpub.digest.tokens import UNSUBSCRIBE, tokens_for
from feedpub.lifecycle.suppression import AddressHasher, is_suppressed
from feedpub.lifecycle.verp import Verp
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.test_digest_support import NOW, article, hours_ago, put, subscribe

CORPUS = Path(__file__).parent / "data" / "bounces"
READER = "reader@example.org"
LATER = NOW + timedelta(hours=2)

# file -> (kind, action, subscriber status after, subscription status after, suppressed)
EXPECTED: dict[str, tuple[str, str, str, str, bool]] = {
    "postfix_hard.eml": ("hard", "bounced", "bounced", "active", True),
    "postfix_delayed.eml": ("delayed", "ignored", "active", "active", False),
    "postfix_gave_up.eml": ("soft", "counted", "active", "active", False),
    "exim_text.eml": ("hard", "bounced", "bounced", "active", True),
    "exchange_ndr.eml": ("hard", "bounced", "bounced", "active", True),
    "gmail_hard.eml": ("hard", "bounced", "bounced", "active", True),
    "gmail_full.eml": ("soft", "counted", "active", "active", False),
    "yahoo_text.eml": ("hard", "bounced", "bounced", "active", True),
    "arf_complaint.eml": (
        "complaint",
        "unsubscribed+suppressed",
        "unsubscribed",
        "unsubscribed",
        True,
    ),
    "autoreply.eml": ("autoreply", "ignored", "active", "active", False),
    "vacation.eml": ("autoreply", "ignored", "active", "active", False),
    "human_reply.eml": ("not-bounce", "ignored", "active", "active", False),
    "unsubscribe_mailto.eml": ("unsubscribe", "unsubscribed", "active", "unsubscribed", False),
    "forged.eml": ("hard", "forged", "active", "active", False),
}


@dataclass
class Room:
    config: Config
    store: Store
    sid: int  # the reader's subscriber id
    edition_id: int
    values: dict[str, str]

    def message(self, name: str) -> bytes:
        text = (CORPUS / name).read_text(encoding="utf-8")
        for k, v in self.values.items():
            text = text.replace(k, v)
        return text.encode("utf-8")

    def state(self) -> tuple[str, str, bool, int]:
        with self.store.read() as conn:
            sub = conn.execute(sa.select(s.subscribers).where(s.subscribers.c.id == self.sid)).one()
            sub_status = conn.execute(
                sa.select(s.subscriptions.c.status).where(
                    s.subscriptions.c.subscriber_id == self.sid
                )
            ).scalar_one()
            hasher = AddressHasher(self.config.token_key())
            return sub.status, sub_status, is_suppressed(conn, hasher(READER)), sub.hard_bounces


@pytest.fixture
def room(newsroom: Newsroom) -> Room:
    cfg = newsroom.config()
    store = Store(cfg.store_url)
    put(store, article(1, "world", hours_ago(3)))
    sid = subscribe(cfg, store, READER)
    subscribe(cfg, store, "other@example.org")
    report = send_newsletter(cfg, store, "daily", now=NOW)
    assert report.status == "sent" and report.edition_id is not None
    with store.read() as conn:
        msgid = conn.execute(
            sa.select(s.deliveries.c.message_id).where(s.deliveries.c.subscriber_id == sid)
        ).scalar_one()
    verp = Verp(cfg.token_key(), cfg)
    values = {
        "@@VERP@@": verp.envelope_from(
            cfg.newsletter("daily"), verp.token_for_delivery(report.edition_id, sid)
        ),
        "@@RCPT@@": READER,
        "@@MSGID@@": msgid,
        "@@UNSUB@@": tokens_for(cfg).make(UNSUBSCRIBE, sid, "daily"),
    }
    yield Room(cfg, store, sid, report.edition_id, values)
    store.close()


def _bounce_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return conn.execute(sa.select(s.bounces).order_by(s.bounces.c.id)).all()


def _snapshot(store: Store) -> list[Any]:
    with store.read() as conn:
        return [
            conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
            for t in (s.subscribers, s.subscriptions, s.suppressions, s.bounces, s.deliveries)
        ]


def test_the_outbox_copy_carries_the_verp_return_path(room: Room, newsroom: Newsroom) -> None:
    eml = next((newsroom.root / "outbox" / "daily").rglob(f"{room.sid}.eml")).read_bytes()
    assert eml.startswith(f"Return-Path: <{room.values['@@VERP@@']}>\r\n".encode())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_corpus_message_gives_the_right_action(room: Room, name: str) -> None:
    kind, action, status, sub_status, suppressed = EXPECTED[name]
    report = ingest(
        room.config, room.store, [RawMessage(name, room.message(name))], source="test", now=LATER
    )
    assert (report.read, report.stored, report.not_ours) == (1, 1, 0)
    [row] = _bounce_rows(room.store)
    assert (row.kind, row.action) == (kind, action), row.note
    assert row.raw == room.message(name)  # kept for audit, byte for byte
    got_status, got_sub, got_suppressed, _ = room.state()
    assert (got_status, got_sub, got_suppressed) == (status, sub_status, suppressed)
    if action not in ("ignored", "forged"):
        assert row.subscriber_id == room.sid
        if kind != "unsubscribe":
            assert row.edition_id == room.edition_id  # the VERP token named the row


def test_status_codes_and_recipients_are_read_from_the_dsn(room: Room) -> None:
    for name in ("postfix_hard.eml", "exchange_ndr.eml", "gmail_full.eml"):
        ingest(
            room.config, room.store, [RawMessage(name, room.message(name))], source="t", now=LATER
        )
    rows = {r.source.split()[-1]: r for r in _bounce_rows(room.store)}
    assert rows["postfix_hard.eml"].status_code == "5.1.1"
    assert rows["exchange_ndr.eml"].status_code == "5.1.10"
    assert rows["gmail_full.eml"].status_code == "5.2.2"  # mailbox full: counted as soft
    assert {r.recipient for r in rows.values()} == {READER}
    assert {r.detector for r in rows.values()} == {"dsn"}


def test_mail_not_ours_is_neither_read_nor_recorded_nor_deleted(room: Room, tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    for d in ("cur", "new", "tmp"):
        (box / d).mkdir(parents=True)
    (box / "new" / "1.not-ours").write_bytes(room.message("not_ours.eml"))
    (box / "new" / "2.hard").write_bytes(room.message("postfix_hard.eml"))
    md = Maildir(box)
    report = ingest(
        room.config, room.store, md.messages(), source="md", now=LATER, on_stored=md.delete
    )
    assert (report.read, report.not_ours, report.stored) == (2, 1, 1)
    assert sorted(p.name for p in (box / "new").iterdir()) == ["1.not-ours"]  # ours deleted
    assert [r.kind for r in _bounce_rows(room.store)] == ["hard"]


def _maildir(room: Room, folder: Path) -> Path:
    for d in ("cur", "new", "tmp"):
        (folder / d).mkdir(parents=True)
    for i, name in enumerate([*sorted(EXPECTED), "not_ours.eml"]):
        (folder / "new" / f"{i:03d}.{name}").write_bytes(room.message(name))
    return folder


def test_ingesting_the_whole_corpus_twice_changes_nothing(room: Room, tmp_path: Path) -> None:
    box = _maildir(room, tmp_path / "Maildir")
    before_files = sorted(p.name for p in (box / "new").iterdir())
    first = ingest(room.config, room.store, Maildir(box).messages(), source="md", now=LATER)
    assert first.stored == len(EXPECTED) and first.not_ours == 1 and not first.errors
    snap = _snapshot(room.store)
    second = ingest(
        room.config, room.store, Maildir(box).messages(), source="md", now=LATER + timedelta(1)
    )
    assert (second.stored, second.duplicates, second.not_ours) == (0, len(EXPECTED), 1)
    assert _snapshot(room.store) == snap
    assert sorted(p.name for p in (box / "new").iterdir()) == before_files  # nothing touched


def test_the_same_message_from_another_source_is_a_duplicate(room: Room) -> None:
    raw = room.message("gmail_hard.eml")
    ingest(room.config, room.store, [RawMessage("a", raw)], source="maildir", now=LATER)
    # the MTA pipe copy carries one more trace header, same Message-ID
    again = b"Received: from relay2 by mx.news.example; Thu, 26 Nov 2026 07:40:00 +0000\r\n" + raw
    r = ingest(room.config, room.store, [RawMessage("stdin", again)], source="stdin", now=LATER)
    assert (r.stored, r.duplicates) == (0, 1)


def test_a_hard_bounce_can_be_undone(room: Room) -> None:
    ingest(
        room.config,
        room.store,
        [RawMessage("h", room.message("postfix_hard.eml"))],
        source="t",
        now=LATER,
    )
    assert room.state() == ("bounced", "active", True, 1)
    [row] = _bounce_rows(room.store)
    runner = CliRunner()
    cfg = str(room.config.path)
    listed = runner.invoke(main, ["--config", cfg, "bounces", "list"])
    assert listed.exit_code == 0 and f"{row.id}  " in listed.output and "bounced" in listed.output
    shown = runner.invoke(main, ["--config", cfg, "bounces", "show", str(row.id)])
    assert "User unknown in virtual mailbox" in shown.output
    undone = runner.invoke(main, ["--config", cfg, "bounces", "undo", str(row.id)])
    assert undone.exit_code == 0, undone.output
    assert "removed from the suppression list" in undone.output
    assert room.state() == ("active", "active", False, 0)
    again = runner.invoke(main, ["--config", cfg, "bounces", "undo", str(row.id)])
    assert again.exit_code == 2 and "already undone" in again.output
    # re-ingesting the undone message still changes nothing
    r = ingest(
        room.config,
        room.store,
        [RawMessage("h", room.message("postfix_hard.eml"))],
        source="t",
        now=LATER,
    )
    assert r.duplicates == 1 and room.state() == ("active", "active", False, 0)


def test_a_complaint_undone_restores_the_subscription(room: Room) -> None:
    ingest(
        room.config,
        room.store,
        [RawMessage("c", room.message("arf_complaint.eml"))],
        source="t",
        now=LATER,
    )
    [row] = _bounce_rows(room.store)
    from feedpub.bounces.review import undo

    with room.store.begin() as conn:
        done = undo(conn, row.id, LATER)
    assert "daily: subscription active again" in done
    assert room.state()[:3] == ("active", "active", False)


def test_soft_bounces_bounce_only_after_m_within_the_window(room: Room) -> None:
    raw = room.message("postfix_gave_up.eml")
    msgs = [
        RawMessage(str(i), raw.replace(b"Message-Id: <", f"Message-Id: <{i}.".encode()))
        for i in range(5)
    ]
    ingest(room.config, room.store, msgs[:4], source="t", now=LATER)
    assert room.state()[0] == "active"
    # a soft bounce outside the 30-day window does not count towards the fifth
    with room.store.begin() as conn:
        conn.execute(
            sa.update(s.bounces)
            .where(s.bounces.c.id == 1)
            .values(received=LATER - timedelta(days=40))
        )
    ingest(room.config, room.store, msgs[4:], source="t", now=LATER)
    assert room.state()[0] == "active"
    extra = RawMessage("5", raw.replace(b"Message-Id: <", b"Message-Id: <5."))
    ingest(room.config, room.store, [extra], source="t", now=LATER)
    assert room.state()[:3] == ("bounced", "active", False)  # soft: not suppressed


def test_stdin_ingest_with_the_mta_recipient(room: Room) -> None:
    # An MTA pipe: the only trace of our address is the envelope recipient it passes.
    raw = room.message("yahoo_text.eml").replace(b"Delivered-To: ", b"X-Was-To: ")
    raw = raw.replace(f"To: {room.values['@@VERP@@']}".encode(), b"To: undisclosed-recipients:;")
    r = CliRunner().invoke(
        main,
        [
            "--config",
            str(room.config.path),
            "bounces",
            "ingest",
            "-",
            "--recipient",
            room.values["@@VERP@@"],
        ],
        input=raw,
    )
    assert r.exit_code == 0, r.output
    assert "stored 1" in r.output
    assert room.state()[0] == "bounced"
    # Postfix's pipe passes $ORIGINAL_RECIPIENT in the environment
    r2 = CliRunner().invoke(
        main,
        ["--config", str(room.config.path), "bounces", "ingest", "-"],
        input=raw,
        env={"ORIGINAL_RECIPIENT": room.values["@@VERP@@"]},
    )
    assert "already ingested 1" in r2.output
    r3 = CliRunner().invoke(
        main, ["--config", str(room.config.path), "bounces", "ingest", "-"], input=raw
    )
    assert "not ours 1 (left alone)" in r3.output  # no trace of our address: not ours


def test_a_bounce_of_a_confirmation_mail_marks_only_that_queued_mail(room: Room) -> None:
    from feedpub.lifecycle import mailqueue

    with room.store.begin() as conn:
        qid = mailqueue.enqueue(conn, "confirm", "daily", "new@example.org", now=NOW)
    verp = Verp(room.config.token_key(), room.config)
    addr = verp.envelope_from(room.config.newsletter("daily"), verp.token_for_queue(qid))
    raw = room.message("gmail_hard.eml").replace(room.values["@@VERP@@"].encode(), addr.encode())
    ingest(room.config, room.store, [RawMessage("q", raw)], source="t", now=LATER)
    with room.store.read() as conn:
        assert conn.execute(sa.select(s.mail_queue.c.status)).scalar_one() == "bounced"
    assert room.state()[0] == "active"


def test_corpus_readme_lists_every_file() -> None:
    text = (CORPUS / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert files == sorted([*EXPECTED, "not_ours.eml"])
    assert all(f in text for f in files)


def test_maildir_without_cur_and_new_is_a_usage_error(room: Room, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["--config", str(room.config.path), "bounces", "ingest", str(tmp_path)]
    )
    assert r.exit_code == 2 and "not a Maildir" in " ".join(r.output.split())
