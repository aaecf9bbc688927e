"""Prepared messages + per-subscriber substitution stay valid MIME for any value; a long
ASCII To header is folded within 78 characters."""

from __future__ import annotations

import email
import email.policy
import tomllib
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpub.config import parse_config
from feedpub.digest.compose import (
    PH_EMAIL,
    PH_NAME,
    PH_PREFS,
    PH_UNSUB,
    Composer,
    Edition,
    PreparedMessage,
    Recipient,
    fill_placeholders,
)
from feedpub.digest.tokens import LinkMaker, Tokens
from tests.conftest import BASE_CONFIG

CONFIG = parse_config(tomllib.loads(BASE_CONFIG))
EDITION = Edition(
    newsletter="daily",
    key="2026-11-26T0700Z",
    from_="Test Times <news@news.example>",
    subject="Test Daily — 26 November 2026 «Київ»",
    date=datetime(2026, 11, 26, 7, 30, tzinfo=UTC),
    list_id="Test Daily <daily.news.example>",
)
TOKENS = Tokens(b"k")
COMPOSER = Composer(EDITION, LinkMaker(CONFIG, "daily", TOKENS), "news.example")

TEXT = f"Hello {PH_NAME},\nline two é\n\n{PH_UNSUB}\n{PH_PREFS} {PH_EMAIL}  \nend\n"
HTML = (
    f'<html><body><p>Hi {PH_NAME}</p><a href="{PH_UNSUB}">Unsubscribe</a>'
    f'<a href="{PH_PREFS}">Prefs</a> {PH_EMAIL}' + "<p>" + "long é " * 300 + "</p></body></html>"
)


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _check(name: str, addr: str = "reader@example.com", sid: int = 7) -> None:
    prepared = PreparedMessage.build(EDITION, TEXT, HTML, "fp-boundary-1")
    data = COMPOSER.compose(prepared, Recipient(sid, addr, name))
    # 7-bit, CRLF only, every line within SMTP's limit (RFC 5321 §4.5.3.1.6)
    data.decode("ascii")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = _parse(data)
    assert not msg.defects
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    clean = " ".join(name.split())
    unsub = COMPOSER.links.unsubscribe_url(sid)
    prefs = COMPOSER.links.preferences_url(sid)
    assert text.get_content().replace("\r\n", "\n") == fill_placeholders(
        TEXT, name=clean, email=addr, unsub=unsub, prefs=prefs
    )
    import html as h

    assert html.get_content().replace("\r\n", "\n") == fill_placeholders(
        HTML, name=h.escape(clean), email=addr, unsub=h.escape(unsub), prefs=h.escape(prefs)
    )
    assert msg["To"].addresses[0].addr_spec == addr
    # RFC 2047 §6.2: white space between adjacent encoded words is not shown. The
    # headerregistry phrase parser keeps it, so read the display name with decode_header.
    raw_to = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    shown = str(make_header(decode_header(raw_to.replace("\r\n", ""))))
    if clean.isascii() and len(clean) <= 150:
        assert msg["To"].addresses[0].display_name == clean
    else:
        assert shown == f"{clean} <{addr}>"
    assert msg["Subject"] == EDITION.subject
    assert msg["Message-ID"] == f"<daily.2026-11-26T0700Z.{sid}@news.example>"


def test_plain_ascii_name() -> None:
    _check("Ann Reader")


def test_hostile_and_long_values() -> None:
    _check('Ünïcødé "quoted" <b>&amp; = =3D ' + "x" * 150)
    _check("")
    _check("Name ends in space ")
    _check("😀" * 200)  # one encoded word would exceed 998 octets: must be folded
    _check("Ж" * 150 + " " + "x" * 49)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200))
def test_any_name_round_trips(name: str) -> None:
    _check(name)


@pytest.mark.parametrize(
    "name",
    [
        "Dr. Jonathan Alexander Montgomery-Fitzgerald III, Esq., Department of Long Names",
        "Ann Reader",
        "A" * 120,  # no space to fold at: left long (still far under 998)
        "Ann " * 37 + "Z",
    ],
)
def test_long_ascii_to_header_is_folded(name: str) -> None:
    """RFC 5322 §2.1.1: header lines SHOULD stay within 78 characters; a long ASCII
    display name gave a single To line of 125+ characters."""
    prepared = PreparedMessage.build(EDITION, TEXT, HTML, "fp-b")
    addr = "jonathan.montgomery@example.com"
    data = COMPOSER.compose(prepared, Recipient(3, addr, name))
    head = data.split(b"\r\n\r\n", 1)[0]
    to_block = head[head.index(b"\r\nTo: ") + 2 :]
    to_lines = [to_block.split(b"\r\n")[0]]
    for line in to_block.split(b"\r\n")[1:]:
        if not line.startswith(b" "):
            break
        to_lines.append(line)
    if " " in name:
        assert all(len(x) <= 78 for x in to_lines), to_lines
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    (a,) = msg["To"].addresses
    assert (a.display_name, a.addr_spec) == (name, addr)


def test_placeholders_survive_only_where_allowed() -> None:
    import pytest

    with pytest.raises(ValueError):
        PreparedMessage.build(EDITION, "FPX7HTO7XPF", HTML, "b")
