"""DKIM with the outbox backend: the .eml files are signed exactly as SMTP mail is, so an
operator can check the signature before switching to SMTP; Reply-To, MIME-Version and
Content-Type are signed when present and From is over-signed (issue 14 item 6)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import dkim
import pytest

from feedpub.delivery.dkim import DkimSigner, header_list
from feedpub.digest import send_newsletter
from tests.conftest import BASE_CONFIG, Newsroom
from tests.smtpserver import make_message
from tests.test_digest_support import NOW, article, hours_ago, put
from tests.test_smtp_delivery import add_subscribers
from tests.test_smtp_dkim import _dns, make_rsa_key

DKIM = '[delivery.dkim]\nselector = "mail2026"\ndomain = "news.example"\nkey_file = "dkim.pem"\n'


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return make_rsa_key()


def _tags(msg: bytes) -> dict[str, str]:
    sig = email.message_from_bytes(msg, policy=email.policy.SMTP)["DKIM-Signature"]
    return dict(t.strip().split("=", 1) for t in "".join(str(sig).split()).split(";") if t)


def _outbox_room(newsroom: Newsroom, pem: bytes, n: int) -> list[Path]:
    (newsroom.root / "dkim.pem").write_bytes(pem)
    base = BASE_CONFIG.replace(
        'postal_address = "1 Test Street, Testville"',
        'postal_address = "1 Test Street, Testville"\nreply_to = "Desk <desk@news.example>"',
    )
    newsroom.set_config('[delivery]\nbackend = "outbox"\n' + DKIM, base=base)
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)), article(2, "technology", hours_ago(3)))
    add_subscribers(store, n)
    r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
    store.close()
    assert (r.status, r.sent) == ("sent", n)
    return sorted((newsroom.root / "outbox").rglob("*.eml"))


def test_outbox_messages_are_signed_and_verify(newsroom: Newsroom, key: tuple[bytes, str]) -> None:
    pem, record = key
    files = _outbox_room(newsroom, pem, 3)
    assert len(files) == 3
    for f in files:
        data = f.read_bytes()
        # Return-Path (the envelope sender a final MTA writes) first, then the signature
        first, rest = data.split(b"\r\n", 1)
        assert first.startswith(b"Return-Path: <") and rest.startswith(b"DKIM-Signature: ")
        assert dkim.verify(data, dnsfunc=_dns(record)), f
        signed = [h.lower() for h in _tags(data)["h"].split(":")]
        # Present in a digest: signed. From once more than it occurs: over-signed.
        assert {"reply-to", "mime-version", "content-type"} <= set(signed)
        assert signed.count("from") == 2
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(signed)


def test_outbox_signature_breaks_when_signed_fields_change(
    newsroom: Newsroom, key: tuple[bytes, str]
) -> None:
    pem, record = key
    data = _outbox_room(newsroom, pem, 1)[0].read_bytes()
    head, _, _body = data.partition(b"\r\n\r\n")
    assert b"\r\nReply-To: " in head
    tampered = {
        "reply-to": data.replace(b"desk@news.example", b"evil@attacker.example", 1),
        "content-type": data.replace(
            b"Content-Type: multipart/alternative", b"Content-Type: multipart/mixed", 1
        ),
        # A second From added in transit (RFC 6376 §8.15): over-signing catches it.
        "extra from": head + b"\r\nFrom: Bank <ceo@bank.example>\r\n\r\n" + _body,
    }
    for what, bad in tampered.items():
        assert bad != data, what
        assert not dkim.verify(bad, dnsfunc=_dns(record)), what


def test_absent_optional_fields_are_not_listed() -> None:
    """Reply-To is signed only when the message has one (a listed absent field would
    forbid adding it, which is not what we were asked)."""
    data = make_message(1).data
    assert b"\r\nReply-To:" not in data
    h = [x.lower() for x in header_list(("From", "Subject"), data)]
    assert "reply-to" not in h
    assert "mime-version" in h and "content-type" in h
    assert h.count("from") == 2


def test_smtp_and_outbox_sign_with_one_signer(tmp_path: Path, key: tuple[bytes, str]) -> None:
    """The same signer (same header list) for both backends: what passes on the outbox
    passes through SMTP."""
    from tests.test_smtp_dkim import _config

    signer = DkimSigner.from_config(_config(tmp_path, 25, key[0]))
    assert signer is not None
    signed = signer.sign(make_message(7).data)
    assert dkim.verify(signed, dnsfunc=_dns(key[1]))
    assert [h.lower() for h in _tags(signed)["h"].split(":")].count("from") == 2
