"""The daemon's lifecycle job: it sends the mail queue (here through the outbox backend,
with the Return-Path a final MTA would add), expires sign-ups nobody confirmed and reads
the configured bounce mailbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.clock import fixed
from feedpub.digest import subscribers as subs
from feedpub.lifecycle import optin
from feedpub.lifecycle.suppression import AddressHasher
from feedpub.lifecycle.verp import Verp
from feedpub.scheduler.lifecycle_job import run_lifecycle
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.test_digest_support import NOW


def test_the_lifecycle_job_sends_the_queue_expires_and_reads_the_mailbox(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    box = tmp_path / "Maildir"
    for d in ("cur", "new", "tmp"):
        (box / d).mkdir(parents=True)
    newsroom.set_config(
        f'[bounces]\npoll_every = "PT5M"\n[bounces.mailbox]\ntype = "maildir"\npath = "{box}"\n'
    )
    cfg = newsroom.config()
    store = Store(cfg.store_url)
    hasher = AddressHasher(cfg.token_key())
    for addr in ("one@example.org", "two@example.org"):
        req = optin.validate(
            cfg, email=addr, name="", newsletter="daily", beats=[], form="page", ip="192.0.2.1"
        )
        with store.begin() as conn:
            assert optin.request_signup(cfg, conn, hasher, req, NOW)[0] == "queued"
    run_lifecycle(cfg, store, now=NOW, clock=fixed(NOW), poll=False)
    files = sorted((newsroom.root / "outbox" / "_mail" / "confirm").glob("*.eml"))
    assert [f.name for f in files] == ["1.eml", "2.eml"]
    verp = Verp(cfg.token_key(), cfg)
    first = files[0].read_bytes()
    rp = verp.envelope_from(cfg.newsletter("daily"), verp.token_for_queue(1))
    assert first.startswith(f"Return-Path: <{rp}>\r\n".encode())
    assert b"Subject: Confirm your subscription to Test Daily" in first
    # the confirmation bounces: the next run with the poll due reads it from the Maildir
    (box / "new" / "1.bounce").write_bytes(
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: " + rp.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.org>\r\n"
        b"X-Failed-Recipients: one@example.org\r\n\r\nNo such user.\r\n"
    )
    later = NOW + cfg.signup.confirm_within + timedelta(minutes=1)
    run_lifecycle(cfg, store, now=later, clock=fixed(later), poll=True)
    with store.read() as conn:
        queue = dict(conn.execute(sa.select(s.mail_queue.c.id, s.mail_queue.c.status)).all())
        assert conn.execute(sa.select(s.bounces.c.action)).scalar_one() == "queued mail bounced"
        assert conn.execute(sa.select(sa.func.count()).select_from(s.signups)).scalar_one() == 0
        left = subs.listing(conn)
    assert queue == {1: "bounced", 2: "sent"}
    assert left == []  # both pending sign-ups expired with their pending subscribers
    store.close()
