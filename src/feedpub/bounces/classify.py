"""What a message in the bounce mailbox is. Pure: bytes in, a Verdict out; no store, no
keys (mapping the message to a ledger row is ``ingest``'s job).

In order of authority:

1. RFC 5965 ARF (``multipart/report; report-type=feedback-report``): ``Feedback-Type``
   abuse / fraud / virus / other is a **complaint**; not-spam and auth-failure are not.
2. RFC 3464 DSN (``multipart/report; report-type=delivery-status``): the first
   per-recipient block with ``Action: failed`` gives the recipient and the RFC 3463
   ``Status``: 5.x.x is a **hard** bounce, 4.x.x **soft** — except 5.2.2 (mailbox full)
   and 5.7.x (security or policy: the receiver refused *us*, which says nothing about
   the address), counted as soft. ``Action: delayed`` is a warning (**delayed**, no
   action); delivered / relayed / expanded are not failures.
3. Anything else that looks like a bounce (sent by MAILER-DAEMON or postmaster, a null
   return path, ``X-Failed-Recipients``, a bounce-like subject) goes to flufl.bounce's
   detectors (``bounces.detect``); what they find is hard (permanent) or delayed.
4. Auto-replies and vacation notices (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``,
   ``X-Autorespond``, ``Precedence: auto_reply``, "Out of office"-style subjects) are
   **autoreply**: never counted as bounces (listmonk counted them: a 4% "bounce rate"
   where the relay saw 0.6%).
5. Mail to the ``List-Unsubscribe`` mailto address with a token is an **unsubscribe**
   request; anything else is **not-bounce**, or **unknown** when it looks like a bounce
   nobody could read.

The returned original message (``message/rfc822`` or ``text/rfc822-headers``) is read
for its Message-ID and the VERP addresses in its headers (ARF reports often redact the
recipient: the return path in the returned headers still names the row).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from typing import Literal

from feedpub.bounces.detect import scan

Kind = Literal[
    "hard", "soft", "delayed", "complaint", "unsubscribe", "autoreply", "not-bounce", "unknown"
]
KINDS: tuple[str, ...] = (
    "hard", "soft", "delayed", "complaint", "unsubscribe", "autoreply", "not-bounce", "unknown"
)  # fmt: skip

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed|failed|problem)|"
    r"returned mail|failure notice|mail delivery (failed|failure|system)|non[- ]?delivery|"
    r"could not be delivered|delivery incomplete",
    re.IGNORECASE,
)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "maildaemon")
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|"
    r"vacation|on holiday|away from (the )?office|abwesenheit|absence|r[ée]ponse automatique)",
    re.IGNORECASE,
)
_ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")
_RETURNED_ADDRESS_HEADERS = ("Return-Path", "X-Original-Return-Path", "Sender", "Errors-To")


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    detector: str  # "arf", "dsn", "flufl.bounce", "auto-submitted", ...
    recipient: str | None = None  # the failed (or complaining) address as reported
    status_code: str | None = None  # RFC 3463 enhanced status code
    diagnostic: str = ""
    returned_message_id: str | None = None  # Message-ID of the returned original
    returned_addresses: tuple[str, ...] = field(default=())  # addresses in its headers
    note: str = ""


def parse(raw: bytes) -> Message:
    """The message (compat32: what flufl.bounce's detectors expect)."""
    return message_from_bytes(raw, policy=compat32)


def dedupe_key(msg: Message, raw: bytes) -> str:
    """Ingesting the same message twice must change nothing: its Message-ID (the same
    message fetched from two places differs in its trace headers), else its bytes."""
    mid = str(msg.get("Message-ID", "") or "").strip()
    if mid:
        return "m" + hashlib.sha256(mid.encode("utf-8", "replace")).hexdigest()[:63]
    return "b" + hashlib.sha256(raw).hexdigest()[:63]


def delivery_addresses(msg: Message, envelope: str | None = None) -> list[str]:
    """The addresses the message was delivered to, most authoritative first."""
    out: list[str] = []
    if envelope:
        out.append(envelope)
    for name in _ADDRESS_HEADERS:
        values = [str(v) for v in msg.get_all(name, [])]
        out.extend(addr for _, addr in getaddresses(values) if addr)
    return list(dict.fromkeys(a.strip().lower() for a in out if "@" in a))


def status_kind(code: str) -> Literal["hard", "soft"]:
    """RFC 3463: 5.x.x permanent (hard), 4.x.x transient (soft); mailbox full (x.2.2) and
    security/policy rejections (x.7.x) are soft whatever their class."""
    cls, subject, detail = code.split(".")
    if cls == "4":
        return "soft"
    if (subject, detail) == ("2", "2") or subject == "7":
        return "soft"
    return "hard"


def _text(value: object) -> str:
    return " ".join(str(value or "").split())


def _address(field_value: str) -> str | None:
    """``rfc822; someone@example.org`` -> ``someone@example.org``."""
    value = _text(field_value)
    if ";" in value:
        value = value.split(";", 1)[1]
    addr = parseaddr(value.strip())[1] or value.strip().strip("<>")
    return addr.lower() if "@" in addr else None


def _returned(msg: Message) -> tuple[str | None, tuple[str, ...]]:
    """Message-ID and header addresses of the returned original, if the report has it."""
    for part in msg.walk():
        ctype = part.get_content_type()
        inner: Message | None = None
        if ctype in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                inner = payload[0]
        elif ctype == "text/rfc822-headers":
            body = part.get_payload(decode=True)
            if isinstance(body, bytes):
                inner = message_from_string(body.decode("utf-8", "replace"), policy=compat32)
        if inner is None:
            continue
        mid = _text(inner.get("Message-ID")).strip("<>") or None
        addrs: list[str] = []
        for name in _RETURNED_ADDRESS_HEADERS:
            values = [str(v) for v in inner.get_all(name, [])]
            addrs.extend(a.lower() for _, a in getaddresses(values) if "@" in a)
        return mid, tuple(dict.fromkeys(addrs))
    return None, ()


def _report_blocks(msg: Message, ctype: str) -> list[Message]:
    for part in msg.walk():
        if part.get_content_type() == ctype:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [p for p in payload if isinstance(p, Message)]
            if isinstance(payload, str):  # a parser that left it as text
                return [message_from_string(b, policy=compat32) for b in payload.split("\n\n")]
    return []


def _arf(msg: Message) -> Verdict:
    blocks = _report_blocks(msg, "message/feedback-report")
    mid, addrs = _returned(msg)
    report = blocks[0] if blocks else Message()
    ftype = _text(report.get("Feedback-Type")).lower() or "abuse"
    rcpt = _address(str(report.get("Original-Rcpt-To", "")))
    if ftype in ("abuse", "fraud", "virus", "other"):
        return Verdict("complaint", "arf", rcpt, None, f"feedback-type {ftype}", mid, addrs)
    return Verdict("not-bounce", "arf", rcpt, None, f"feedback-type {ftype}", mid, addrs)


def _dsn(msg: Message) -> Verdict | None:
    blocks = _report_blocks(msg, "message/delivery-status")
    if not blocks:
        return None
    mid, addrs = _returned(msg)
    first: Verdict | None = None
    for block in blocks[1:] or blocks:
        action = _text(block.get("Action")).lower()
        if not action:
            continue
        rcpt = _address(
            str(block.get("Final-Recipient", "") or block.get("Original-Recipient", ""))
        )
        diag = _text(block.get("Diagnostic-Code"))
        code = _code(_text(block.get("Status")), diag)
        if action == "failed":
            kind: Kind = status_kind(code) if code else "hard"
            return Verdict(kind, "dsn", rcpt, code, diag[:500], mid, addrs)
        if action == "delayed" and first is None:
            first = Verdict("delayed", "dsn", rcpt, code, diag[:500], mid, addrs)
        elif first is None:
            first = Verdict("not-bounce", "dsn", rcpt, code, f"action {action}", mid, addrs)
    return first or Verdict("unknown", "dsn", None, None, "no per-recipient fields", mid, addrs)


def _code(status: str, diagnostic: str) -> str | None:
    """The enhanced status code; a vague ``x.0.0`` gives way to a precise one in the
    diagnostic text (``550 5.1.1 ...``) of the same class."""
    m = _STATUS.search(status)
    code = ".".join(m.groups()) if m else None
    d = _STATUS.search(diagnostic)
    if d and (code is None or (code.endswith(".0.0") and d.group(1) == code[0])):
        return ".".join(d.groups())
    return code


def looks_like_bounce(msg: Message) -> bool:
    sender = parseaddr(str(msg.get("From", "")))[1].lower()
    if sender.split("@", 1)[0] in _DAEMONS:
        return True
    if msg.get("X-Failed-Recipients"):
        return True
    # A null return path (RFC 5321 §4.5.5) and a bounce-like subject.
    null_path = _text(msg.get("Return-Path")) == "<>"
    return null_path and bool(_BOUNCE_SUBJECT.search(_text(msg.get("Subject"))))


def autoreply_reason(msg: Message) -> str | None:
    auto = _text(msg.get("Auto-Submitted")).lower()
    if auto and auto != "no":
        return "auto-submitted"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        if msg.get(name) is not None:
            return name.lower()
    if _text(msg.get("Precedence")).lower() in ("auto_reply", "auto-reply"):
        return "precedence"
    if _AUTOREPLY_SUBJECT.search(_text(msg.get("Subject"))):
        return "subject"
    return None


def classify(msg: Message, *, to_unsubscribe: bool = False) -> Verdict:
    """What the message is. ``to_unsubscribe``: it was delivered to the List-Unsubscribe
    mailto address (then a token in it makes it an unsubscribe request)."""
    ctype = msg.get_content_type()
    report = str(msg.get_param("report-type", "") or "").lower()
    if ctype == "multipart/report" and report == "feedback-report":
        return _arf(msg)
    if ctype == "multipart/report" and report == "delivery-status":
        found = _dsn(msg)
        if found is not None:
            return found
    if any(p.get_content_type() == "message/delivery-status" for p in msg.walk()):
        found = _dsn(msg)  # a DSN part without the report-type parameter
        if found is not None:
            return found
    if looks_like_bounce(msg):
        mid, addrs = _returned(msg)
        temporary, permanent = scan(msg)
        if permanent:
            return Verdict("hard", "flufl.bounce", sorted(permanent)[0], None, "", mid, addrs)
        if temporary:
            return Verdict("delayed", "flufl.bounce", sorted(temporary)[0], None, "", mid, addrs)
        return Verdict(
            "unknown",
            "heuristic",
            None,
            None,
            "looks like a bounce; no recipient found",
            mid,
            addrs,
        )
    why = autoreply_reason(msg)
    if why is not None:
        return Verdict("autoreply", why)
    if to_unsubscribe:
        return Verdict("unsubscribe", "mailto")
    return Verdict("not-bounce", "none")


def unsubscribe_text(msg: Message) -> str:
    """Where a mailto unsubscribe carries its token: the subject, then the start of the
    first text part (some clients move the subject into the body)."""
    subject = _text(msg.get("Subject"))
    body = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                body = data[:4000].decode("utf-8", "replace")
            break
    return subject + "\n" + body
