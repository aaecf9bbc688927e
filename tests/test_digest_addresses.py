"""Addresses and names in a sent edition's headers: an internationalized domain (a
subscriber's or the sender's) is written in its ASCII form, so the message stays 7-bit;
control characters never reach a stored name or the To header.

(normalize_email alone: test_subscribers.py; folding a long To header:
test_digest_compose.py.)"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from tests.conftest import Newsroom
from tests.test_digest_support import (
    NOW,
    OUTBOX,
    _run,
    article,
    hours_ago,
    put,
    subscribe,
)


def test_subscriber_with_idn_domain_gets_the_edition(newsroom: Newsroom) -> None:
    store = newsroom.store()
    cfg = newsroom.config()
    put(store, article(1, "world", hours_ago(2), title="World story"))
    csv = newsroom.root / "subs.csv"
    csv.write_text("email,name,newsletter,beats\nuser@bücher.example,IDN Reader,daily,\n", "utf-8")
    assert _run(newsroom, "subscribers", "import", str(csv))[0] == 0
    report = send_newsletter(cfg, store, "daily", now=NOW)
    assert (report.status, report.sent, report.failed) == ("sent", 1, 0)
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    data = eml.read_bytes()
    assert data.isascii()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"].addresses[0].addr_spec == "user@xn--bcher-kva.example"


def test_idn_from_domain_is_written_in_its_ascii_form(newsroom: Newsroom) -> None:
    """``from = "Новини <news@новини.укр>"``: the From header came out as
    ``news@=?utf-8?b?...?=`` (an encoded word where a domain must be) and the Message-IDs
    (frozen with the Unicode domain) could not be encoded: every row failed."""
    from tests.conftest import BASE_CONFIG

    newsroom.set_config(
        base=BASE_CONFIG.replace(
            'from = "Test Times <news@news.example>"', 'from = "Новини <news@новини.укр>"'
        )
    )
    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "a@example.com")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert (r.status, r.sent, r.failed) == ("sent", 1, 0)
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    data = eml.read_bytes()
    assert data.isascii()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Новини", "news@xn--b1amarcd.xn--j1amh")
    assert msg["Message-ID"].endswith("@xn--b1amarcd.xn--j1amh>")
    assert msg["List-Id"].endswith("<daily.xn--b1amarcd.xn--j1amh>")
    assert "mailto:unsubscribe@xn--b1amarcd.xn--j1amh?" in msg["List-Unsubscribe"]


def test_control_characters_never_reach_a_stored_name_or_the_to_header(
    newsroom: Newsroom,
) -> None:
    """clean_name removed only NUL: an ESC or BEL from a CSV went raw into the To header
    (RFC 5322 §3.2.4 qtext has no control characters) and into the operator's terminal
    through `subscribers list`. Format characters such as ZWJ (Sinhala) are kept."""
    assert subs.clean_name("Ann\x1b[31m Red\x07\x7f\x85 x") == "Ann[31m Red x"
    assert subs.clean_name("ශ්\u200dරී") == "ශ්\u200dරී"
    store = newsroom.store()
    cfg = newsroom.config()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "a@example.com", name="Ann\x1b]0;pwned\x07 Reader")
    assert send_newsletter(cfg, store, "daily", now=NOW).sent == 1
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    data = eml.read_bytes()
    assert not any((b < 32 and b not in (13, 10)) or b == 127 for b in data)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"].addresses[0].display_name == "Ann]0;pwned Reader"
