"""Subscribers and their per-newsletter subscriptions (beats chosen; none = all).

Email addresses are validated and normalized with email-validator (syntax only, no DNS:
imports must work offline) and lower-cased, so one person is one row. Addresses that
need SMTPUTF8 are refused: every message we write is plain 7-bit headers.

Unsubscribes are sticky: ``import`` never re-activates a subscription someone ended
unless the operator says so (``--resubscribe``); ``subscribers add`` does. Addresses on
the suppression list (complaints, hard bounces, erased people: ``feedpub.lifecycle``)
are never added or re-activated by either: the operator removes them from the list
first.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.config import Config
from feedpub.errors import UsageError
from feedpub.lifecycle import suppression

STATUSES = ("pending", "active", "unsubscribed", "bounced", "erased")
MAX_NAME = 200
CSV_HEADER = ("email", "name", "newsletter", "beats")


class SubscriberError(ValueError):
    """One subscriber's data is wrong (bad address, unknown newsletter or beat)."""


def normalize_email(value: str) -> str:
    """The canonical form of an address, or SubscriberError saying what is wrong."""
    raw = value.strip()
    if not raw:
        raise SubscriberError("email is empty")
    try:
        info = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        raise SubscriberError(f"{raw!r} is not a valid email address: {e}") from None
    # An internationalized domain is kept in its ASCII (IDNA, RFC 5891) form: that is what
    # a 7-bit To header and RCPT TO without SMTPUTF8 can carry.
    return str(info.ascii_email or info.normalized).lower()


def clean_name(value: str) -> str:
    # Control characters (Unicode Cc: NUL, ESC, BEL, DEL ...) have no place in a name, a
    # header (RFC 5322 §3.2.4) or a terminal; white space is collapsed. Format characters
    # (Cf, e.g. the ZWJ of Sinhala script) are kept.
    kept = "".join(ch for ch in value if ch.isspace() or unicodedata.category(ch) != "Cc")
    name = " ".join(kept.split())
    if len(name) > MAX_NAME:
        raise SubscriberError(f"name is longer than {MAX_NAME} characters")
    return name


def parse_beats(config: Config, newsletter: str, value: str | Sequence[str]) -> tuple[str, ...]:
    """Beats as chosen (``;``-separated text or a list), checked against the newsletter's
    beats and put in its configured order. Empty means all of the newsletter's beats."""
    try:
        nl = config.newsletter(newsletter)
    except KeyError:
        known = ", ".join(n.slug for n in config.newsletters) or "(none configured)"
        raise SubscriberError(f"unknown newsletter {newsletter!r}; newsletters: {known}") from None
    items = value.split(";") if isinstance(value, str) else list(value)
    chosen = [b.strip() for b in items if b.strip()]
    allowed = config.newsletter_beats(nl)
    bad = [b for b in chosen if b not in allowed]
    if bad:
        raise SubscriberError(
            f"beat {bad[0]!r} is not in newsletter {newsletter!r}; its beats: {', '.join(allowed)}"
        )
    return tuple(b for b in allowed if b in chosen)


@dataclass(frozen=True, slots=True)
class SubscriberRow:
    id: int
    email: str
    name: str
    status: str
    newsletter: str | None = None
    beats: tuple[str, ...] = ()
    subscription_status: str | None = None


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0
    kept_suppressed: int = 0
    rejected: list[str] = field(default_factory=list)  # "FILE:LINE: reason"


def _find(conn: Connection, email: str) -> Any:
    return conn.execute(sa.select(s.subscribers).where(s.subscribers.c.email == email)).first()


def upsert_subscription(
    conn: Connection,
    *,
    email: str,
    name: str,
    newsletter: str,
    beats: tuple[str, ...],
    now: datetime,
    status: str = "active",
    reactivate: bool = True,
) -> str:
    """Add or update one subscriber + subscription. Returns "added", "updated",
    "unchanged" or "kept-unsubscribed" (``reactivate=False`` and they had left)."""
    sub = s.subscribers
    row = _find(conn, email)
    result = "unchanged"
    if row is None:
        sid = conn.execute(
            sa.insert(sub).values(
                email=email, name=name, status=status, hard_bounces=0, created=now, updated=now
            )
        ).inserted_primary_key
        assert sid is not None
        sid = sid[0]
        result = "added"
    else:
        sid = row.id
        if not reactivate and row.status in ("unsubscribed", "bounced"):
            return "kept-unsubscribed"
        values: dict[str, Any] = {}
        if name and name != row.name:
            values["name"] = name
        if row.status != status:
            values["status"] = status
        if values:
            conn.execute(sa.update(sub).where(sub.c.id == sid).values(updated=now, **values))
            result = "updated"
    subs = s.subscriptions
    cur = conn.execute(
        sa.select(subs).where(subs.c.subscriber_id == sid, subs.c.newsletter == newsletter)
    ).first()
    if cur is None:
        conn.execute(
            sa.insert(subs).values(
                subscriber_id=sid,
                newsletter=newsletter,
                beats=list(beats),
                status="active",
                created=now,
                updated=now,
            )
        )
        return "added" if result == "added" else "updated"
    if cur.status not in ("active", "pending") and not reactivate:
        return "kept-unsubscribed"
    if tuple(cur.beats or ()) != beats or cur.status != "active":
        conn.execute(
            sa.update(subs)
            .where(subs.c.subscriber_id == sid, subs.c.newsletter == newsletter)
            .values(beats=list(beats), status="active", updated=now)
        )
        return "updated"
    return result


def add(
    config: Config,
    conn: Connection,
    email: str,
    *,
    name: str = "",
    newsletters: Sequence[str],
    beats: str | Sequence[str] = "",
    now: datetime,
) -> tuple[str, list[str]]:
    """``subscribers add``: returns the normalized address and what happened per newsletter."""
    addr = normalize_email(email)
    nm = clean_name(name)
    if not newsletters:
        raise UsageError("name at least one newsletter (--newsletter SLUG)")
    if suppression.count(conn):
        found = suppression.find(conn, suppression.AddressHasher(config.token_key())(addr))
        if found is not None:
            raise UsageError(
                f"{addr} is on the suppression list ({found.reason}); if they really asked "
                f"to be subscribed again, run `feedpub suppression remove {addr}` first"
            )
    out = []
    for n in newsletters:
        chosen = parse_beats(config, n, beats)
        out.append(
            f"{n}: "
            + upsert_subscription(
                conn, email=addr, name=nm, newsletter=n, beats=chosen, now=now, reactivate=True
            )
        )
    return addr, out


def remove(
    conn: Connection, email: str, *, newsletter: str | None, now: datetime, purge: bool = False
) -> int:
    """Unsubscribe from one newsletter (or all); ``purge`` deletes the person entirely
    (their ledger rows keep the frozen address). Returns the rows changed."""
    addr = normalize_email(email)
    row = _find(conn, addr)
    if row is None:
        raise UsageError(f"{addr} is not a subscriber")
    subs = s.subscriptions
    if purge:
        conn.execute(sa.delete(subs).where(subs.c.subscriber_id == row.id))
        conn.execute(
            sa.update(s.subscribers)
            .where(s.subscribers.c.id == row.id)
            .values(status="unsubscribed", name="", updated=now)
        )
        return 1
    cond = [subs.c.subscriber_id == row.id, subs.c.status == "active"]
    if newsletter is not None:
        cond.append(subs.c.newsletter == newsletter)
    n = conn.execute(sa.update(subs).where(*cond).values(status="unsubscribed", updated=now))
    if newsletter is None:
        conn.execute(
            sa.update(s.subscribers)
            .where(s.subscribers.c.id == row.id)
            .values(status="unsubscribed", updated=now)
        )
    return int(n.rowcount or 0)


def unsubscribe_by_id(conn: Connection, subscriber_id: int, newsletter: str, now: datetime) -> bool:
    """What a verified one-click unsubscribe does (RFC 8058)."""
    subs = s.subscriptions
    n = conn.execute(
        sa.update(subs)
        .where(subs.c.subscriber_id == subscriber_id, subs.c.newsletter == newsletter)
        .values(status="unsubscribed", updated=now)
    )
    return bool(n.rowcount)


def subscription_by_id(
    conn: Connection, subscriber_id: int, newsletter: str
) -> SubscriberRow | None:
    """One subscriber's subscription to one newsletter (what a preferences page shows)."""
    sub, subs = s.subscribers, s.subscriptions
    r = conn.execute(
        sa.select(
            sub.c.id,
            sub.c.email,
            sub.c.name,
            sub.c.status,
            subs.c.beats,
            subs.c.status.label("sstatus"),
        )
        .join(subs, subs.c.subscriber_id == sub.c.id)
        .where(sub.c.id == subscriber_id, subs.c.newsletter == newsletter)
    ).first()
    if r is None:
        return None
    return SubscriberRow(
        r.id, r.email, r.name, r.status, newsletter, tuple(r.beats or ()), r.sstatus
    )


def set_beats_by_id(
    conn: Connection,
    subscriber_id: int,
    newsletter: str,
    beats: tuple[str, ...],
    now: datetime,
    *,
    resubscribe: bool = False,
) -> bool:
    """What a verified preferences form does: save the beats chosen (already checked by
    ``parse_beats``; empty = all). ``resubscribe`` also re-activates the subscription and
    a subscriber who had unsubscribed (never a bounced one: that takes ``subscribers add``).
    False when there is no such subscription (purged)."""
    subs = s.subscriptions
    values: dict[str, Any] = {"beats": list(beats), "updated": now}
    if resubscribe:
        values["status"] = "active"
    n = conn.execute(
        sa.update(subs)
        .where(subs.c.subscriber_id == subscriber_id, subs.c.newsletter == newsletter)
        .values(**values)
    )
    if not n.rowcount:
        return False
    if resubscribe:
        conn.execute(
            sa.update(s.subscribers)
            .where(s.subscribers.c.id == subscriber_id, s.subscribers.c.status == "unsubscribed")
            .values(status="active", updated=now)
        )
    return True


def listing(conn: Connection, newsletter: str | None = None) -> list[SubscriberRow]:
    sub, subs = s.subscribers, s.subscriptions
    q = (
        sa.select(
            sub.c.id,
            sub.c.email,
            sub.c.name,
            sub.c.status,
            subs.c.newsletter,
            subs.c.beats,
            subs.c.status.label("sstatus"),
        )
        .select_from(sub.outerjoin(subs, subs.c.subscriber_id == sub.c.id))
        .where(sub.c.status != "erased")
        .order_by(sub.c.email, subs.c.newsletter)
    )
    if newsletter is not None:
        q = q.where(subs.c.newsletter == newsletter)
    return [
        SubscriberRow(
            r.id, r.email, r.name, r.status, r.newsletter, tuple(r.beats or ()), r.sstatus
        )
        for r in conn.execute(q)
    ]


def active_recipients(conn: Connection, newsletter: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(subscriber id, email, beats chosen) of everyone who should get the next edition."""
    sub, subs = s.subscribers, s.subscriptions
    q = (
        sa.select(sub.c.id, sub.c.email, subs.c.beats)
        .join(subs, subs.c.subscriber_id == sub.c.id)
        .where(subs.c.newsletter == newsletter, subs.c.status == "active", sub.c.status == "active")
        .order_by(sub.c.id)
    )
    return [(r.id, r.email, tuple(r.beats or ())) for r in conn.execute(q)]


def import_csv(
    config: Config,
    conn: Connection,
    path: Path,
    *,
    now: datetime,
    text: str | None = None,
    resubscribe: bool = False,
) -> ImportReport:
    """Import ``email,name,newsletter,beats`` rows. Every bad row is reported with its line
    number and skipped; the rest are imported. Running it twice changes nothing. Someone
    who unsubscribed (or bounced) stays so unless ``resubscribe``; a suppressed address
    is never imported."""
    report = ImportReport()
    hasher = suppression.AddressHasher(config.token_key()) if suppression.count(conn) else None
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
        except OSError as e:
            raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    seen: dict[tuple[str, str], int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # e.g. a field over the csv module's size limit
            if header is None:
                raise UsageError(f"{path}:{reader.line_num}: {e}") from None
            report.rejected.append(f"{path}:{reader.line_num}: {e}")
            continue
        line = reader.line_num
        if header is None:
            header = [h.strip().lower() for h in row]
            missing = [h for h in ("email", "newsletter") if h not in header]
            if missing:
                raise UsageError(
                    f"{path}:{line}: the header must be '{','.join(CSV_HEADER)}' "
                    f"(missing: {', '.join(missing)})"
                )
            continue
        if not any(c.strip() for c in row):
            continue
        rec = dict(zip(header, row, strict=False))
        if len(row) > len(header):
            report.rejected.append(f"{path}:{line}: {len(row)} fields, header has {len(header)}")
            continue
        try:
            addr = normalize_email(rec.get("email", ""))
            name = clean_name(rec.get("name", ""))
            newsletter = rec.get("newsletter", "").strip()
            if not newsletter:
                raise SubscriberError("newsletter is empty")
            chosen = parse_beats(config, newsletter, rec.get("beats", ""))
        except SubscriberError as e:
            report.rejected.append(f"{path}:{line}: {e}")
            continue
        first = seen.setdefault((addr, newsletter), line)
        if first != line:
            report.rejected.append(
                f"{path}:{line}: {addr} is already subscribed to {newsletter} on line {first}"
            )
            continue
        if hasher is not None and suppression.is_suppressed(conn, hasher(addr)):
            report.kept_suppressed += 1
            continue
        result = upsert_subscription(
            conn,
            email=addr,
            name=name,
            newsletter=newsletter,
            beats=chosen,
            now=now,
            reactivate=resubscribe,
        )
        if result == "added":
            report.added += 1
        elif result == "updated":
            report.updated += 1
        elif result == "kept-unsubscribed":
            report.kept_unsubscribed += 1
        else:
            report.unchanged += 1
    if header is None:
        raise UsageError(f"{path}: empty file; expected the header '{','.join(CSV_HEADER)}'")
    return report
