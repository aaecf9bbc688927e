"""Messages: render once per beat selection, then personalize by substitution.

A ``PreparedMessage`` is the whole RFC 5322 message (CRLF line ends, as
``email.policy.SMTP`` writes them) cut once at its placeholders into byte segments;
composing one subscriber's copy is a ``b"".join`` of those segments with that
subscriber's values (FIELD-NOTES: ~130,000/s, against 95/s for one EmailMessage each).

Both parts are quoted-printable (RFC 2045 §6.7) with lines of at most 76 octets, so the
message is 7-bit clean and far under SMTP's 998-octet limit (RFC 5321 §4.5.3.1.6). We
encode the body ourselves so that every placeholder sits alone between two soft line
breaks (``=\\r\\n``): the per-subscriber value, QP-encoded on its own, can then be any
length and any text without breaking the encoding. Placeholders are ASCII letters and
digits that Jinja's escaping, MJML and QP all leave untouched.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.utils import format_datetime, formataddr

from feedpub.digest.tokens import LinkMaker

# Placeholders the templates see (through the render context).
PH_NAME = "FPX7NAME7XPF"
PH_EMAIL = "FPX7EMAIL7XPF"
PH_UNSUB = "FPX7UNSUB7XPF"
PH_PREFS = "FPX7PREFS7XPF"
# Header placeholders (never shown to templates).
_PH_TO = "FPX7HTO7XPF"
_PH_MSGID = "FPX7HMSGID7XPF"
_PH_LISTUNSUB = "FPX7HLISTUNSUB7XPF"
_PLACEHOLDER = re.compile(r"FPX7([A-Z]+)7XPF")

# Value slots, in the order Composer.values() returns them.
TO, MSGID, LISTUNSUB, T_NAME, T_EMAIL, T_UNSUB, T_PREFS, H_NAME, H_EMAIL, H_UNSUB, H_PREFS = range(
    11
)
_HEADER_SLOTS = {"HTO": TO, "HMSGID": MSGID, "HLISTUNSUB": LISTUNSUB}
_TEXT_SLOTS = {"NAME": T_NAME, "EMAIL": T_EMAIL, "UNSUB": T_UNSUB, "PREFS": T_PREFS}
_HTML_SLOTS = {"NAME": H_NAME, "EMAIL": H_EMAIL, "UNSUB": H_UNSUB, "PREFS": H_PREFS}
_SOFT = b"=\r\n"


def personal_context() -> dict[str, object]:
    """What templates get for per-subscriber values: placeholders, filled in later."""
    return {
        "subscriber": {"name": PH_NAME, "email": PH_EMAIL},
        "unsubscribe_url": PH_UNSUB,
        "preferences_url": PH_PREFS,
        "personal": True,
    }


def qp(data: str) -> bytes:
    """Quoted-printable (RFC 2045 §6.7) of UTF-8 text, CRLF line ends, lines <= 76."""
    encoded = binascii.b2a_qp(data.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


@dataclass(frozen=True, slots=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Edition:
    """What every message of an edition shares in its headers."""

    newsletter: str
    key: str  # file-safe edition key, e.g. "2026-11-26T0700Z"
    from_: str
    subject: str
    date: datetime
    list_id: str  # e.g. "JadeTimes Daily <daily.jadetimes.example>"
    reply_to: str | None = None


def message_id(newsletter: str, key: str, subscriber_id: int, domain: str) -> str:
    """Deterministic per (edition, subscriber): a resend after a crash reuses it."""
    return f"{newsletter}.{key}.{subscriber_id}@{domain}"


def _header(name: str, value: str) -> str:
    """One header, folded and RFC 2047-encoded as email.policy.SMTP writes it (policy.fold
    alone leaves a short non-ASCII value raw)."""
    out = policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP)
    out.encode("ascii")  # 7-bit headers only; raises on anything else
    return str(out)


def _to(name: str, addr: str) -> bytes:
    """The To value. Short ASCII names go through formataddr (quoted as needed); any other
    name becomes RFC 2047 base64 encoded words of at most 75 characters each (§2), one per
    folded line: white space between adjacent encoded words is not displayed (§6.2)."""
    if name.isascii() and len(name) <= 150:
        return _fold_at_spaces(formataddr((name, addr)), len("To: ")).encode("ascii")
    words: list[str] = []
    chunk = b""
    for ch in name:
        enc = ch.encode("utf-8")
        if len(chunk) + len(enc) > 45:  # 45 octets -> 60 base64 chars + 12 = 72 <= 75
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += enc
    if chunk:
        words.append(chunk.decode("utf-8"))
    encoded = "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words
    )
    return f"{encoded}\r\n <{addr}>".encode("ascii")


def _fold_at_spaces(value: str, used: int) -> str:
    """Fold a header value at its spaces so lines stay within 78 characters where a space
    allows (RFC 5322 §2.1.1, §2.2.3: unfolding removes only the CRLF, so the space stays;
    folding white space may also sit inside a quoted-string, §3.2.4)."""
    if used + len(value) <= 78:
        return value
    words = value.split(" ")
    lines = [words[0]]
    width = used + len(words[0])
    for w in words[1:]:
        if width + 1 + len(w) > 78:
            lines.append(w)
            width = 1 + len(w)
        else:
            lines[-1] += " " + w
            width += 1 + len(w)
    return "\r\n ".join(lines)


class PreparedMessage:
    """A message for one beat selection, cut at its placeholders."""

    __slots__ = ("segments", "slots", "used")

    def __init__(self, segments: list[bytes], slots: list[int]) -> None:
        self.segments = segments
        self.slots = slots
        self.used = frozenset(slots)

    @classmethod
    def build(cls, edition: Edition, text: str, html_body: str, boundary: str) -> PreparedMessage:
        fold = _header
        head = "".join(
            [
                fold("From", edition.from_),
                f"To: {_PH_TO}\r\n",
                fold("Subject", edition.subject),
                fold("Date", format_datetime(edition.date)),
                f"Message-ID: <{_PH_MSGID}>\r\n",
                fold("List-Id", edition.list_id),
                f"List-Unsubscribe: {_PH_LISTUNSUB}\r\n",
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                fold("Reply-To", edition.reply_to) if edition.reply_to else "",
                "MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n',
                "\r\n",
            ]
        )
        segments: list[bytes] = []
        slots: list[int] = []
        pending = b""

        def add(chunks: list[str], mapping: dict[str, int], encode: bool, prefix: bytes) -> bytes:
            nonlocal pending
            buf = pending + prefix
            for i, chunk in enumerate(chunks):
                if i % 2 == 0:
                    buf += qp(chunk) if encode else chunk.encode("ascii")
                    continue
                if chunk not in mapping:
                    raise ValueError(f"placeholder {chunk} is not allowed here")
                segments.append(buf + (_SOFT if encode else b""))
                slots.append(mapping[chunk])
                buf = _SOFT if encode else b""
            return buf

        pending = add(_PLACEHOLDER.split(head), _HEADER_SLOTS, False, b"")
        part = (
            f'--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        pending = add(_PLACEHOLDER.split(text), _TEXT_SLOTS, True, part)
        part = (
            f'\r\n--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        pending = add(_PLACEHOLDER.split(html_body), _HTML_SLOTS, True, part)
        segments.append(pending + f"\r\n--{boundary}--\r\n".encode("ascii"))
        return cls(segments, slots)

    def compose(self, values: Sequence[bytes]) -> bytes:
        segs = self.segments
        out = [segs[0]]
        append = out.append
        for i, slot in enumerate(self.slots, 1):
            append(values[slot])
            append(segs[i])
        return b"".join(out)


class Composer:
    """Per-subscriber values for one edition: addresses, tokens, links."""

    def __init__(self, edition: Edition, links: LinkMaker, domain: str) -> None:
        self.edition = edition
        self.links = links
        self.domain = domain

    def message_id(self, subscriber_id: int) -> str:
        return message_id(self.edition.newsletter, self.edition.key, subscriber_id, self.domain)

    def values(self, r: Recipient, msgid: str, used: frozenset[int] | None = None) -> list[bytes]:
        name = " ".join(r.name.split())
        links = self.links
        list_unsub = links.list_unsubscribe(r.subscriber_id, folded=True)
        unsub = list_unsub[1 : list_unsub.index(">")]
        prefs = links.preferences_url(r.subscriber_id)
        empty = b""
        need = used if used is not None else frozenset(range(11))
        return [
            _to(name, r.email),
            msgid.encode("ascii"),
            list_unsub.encode("ascii"),
            qp(name) if T_NAME in need else empty,
            qp(r.email) if T_EMAIL in need else empty,
            qp(unsub) if T_UNSUB in need else empty,
            qp(prefs) if T_PREFS in need else empty,
            qp(html.escape(name)) if H_NAME in need else empty,
            qp(html.escape(r.email)) if H_EMAIL in need else empty,
            qp(html.escape(unsub)) if H_UNSUB in need else empty,
            qp(html.escape(prefs)) if H_PREFS in need else empty,
        ]

    def compose(self, prepared: PreparedMessage, r: Recipient, msgid: str | None = None) -> bytes:
        mid = msgid or self.message_id(r.subscriber_id)
        return prepared.compose(self.values(r, mid, prepared.used))


def fill_placeholders(text: str, *, name: str, email: str, unsub: str, prefs: str) -> str:
    """The decoded text a subscriber sees (tests and previews compare against this)."""
    return (
        text.replace(PH_NAME, name)
        .replace(PH_EMAIL, email)
        .replace(PH_UNSUB, unsub)
        .replace(PH_PREFS, prefs)
    )
