"""Data rights: ``subscribers export EMAIL`` (everything held about an address, as JSON)
and ``subscribers erase EMAIL`` (the person is deleted; only the suppression hash and
aggregate counts remain).

Erasure, in one transaction:
- the address goes on the suppression list as a keyed hash only (reason ``erased``; an
  earlier complaint or bounce entry forgets its address), so no import or sign-up
  brings it back unnoticed;
- subscriptions, sign-up and consent records and queued mail are deleted;
- the subscriber row becomes an anonymous tombstone (``erased-{id}@invalid``, no name,
  status ``erased``) because the delivery ledger's rows point at it: they keep their
  edition, status and counts, but their address becomes the tombstone's and their last
  error (which may quote the address) is cleared;
- kept bounce messages lose their raw text, recipient and subscriber: their kind and
  edition still count in the rates.
Files the outbox backend wrote for the person are deleted after the commit.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.config import Config
from feedpub.delivery.outbox import edition_key
from feedpub.digest.subscribers import normalize_email
from feedpub.errors import UsageError
from feedpub.lifecycle.suppression import AddressHasher, find, suppress


def _iso(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return v


def _rows(conn: Connection, q: Any, *, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{k: _iso(v) for k, v in r._mapping.items() if k not in drop} for r in conn.execute(q)]


def export(conn: Connection, hasher: AddressHasher, email: str, now: datetime) -> dict[str, Any]:
    """Everything the store holds about ``email``. UsageError when it holds nothing."""
    addr = normalize_email(email)
    sub = conn.execute(sa.select(s.subscribers).where(s.subscribers.c.email == addr)).first()
    out: dict[str, Any] = {"email": addr, "exported": _iso(now), "subscriber": None}
    sid = None
    if sub is not None:
        sid = int(sub.id)
        out["subscriber"] = {k: _iso(v) for k, v in sub._mapping.items()}
        t = s.subscriptions
        out["subscriptions"] = _rows(
            conn, sa.select(t).where(t.c.subscriber_id == sid).order_by(t.c.newsletter),
            drop=("subscriber_id",),
        )  # fmt: skip
        d, e = s.deliveries, s.editions
        out["deliveries"] = _rows(
            conn,
            sa.select(
                e.c.newsletter, e.c.slot, e.c.number, d.c.edition_id, d.c.email, d.c.selection,
                d.c.status, d.c.attempts, d.c.last_error, d.c.message_id, d.c.updated,
            )
            .join(e, e.c.id == d.c.edition_id)
            .where(d.c.subscriber_id == sid)
            .order_by(d.c.edition_id),
        )  # fmt: skip
    su = s.signups
    out["signups"] = _rows(conn, sa.select(su).where(su.c.email == addr).order_by(su.c.id))
    q = s.mail_queue
    out["queued_mail"] = _rows(conn, sa.select(q).where(q.c.recipient == addr).order_by(q.c.id))
    b = s.bounces
    cond = (
        b.c.recipient == addr
        if sid is None
        else sa.or_(b.c.subscriber_id == sid, b.c.recipient == addr)
    )
    bounces = []
    for r in conn.execute(sa.select(b).where(cond).order_by(b.c.id)):
        item = {k: _iso(v) for k, v in r._mapping.items() if k not in ("raw", "dedupe_key")}
        raw = bytes(r.raw) if r.raw is not None else None
        if raw is not None:
            try:
                item["raw"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                item["raw_base64"] = base64.b64encode(raw).decode("ascii")
        bounces.append(item)
    out["bounces"] = bounces
    found = find(conn, hasher(addr))
    out["suppression"] = (
        None
        if found is None
        else {"reason": found.reason, "created": _iso(found.created), "note": found.note}
    )
    held = sub is not None or any(out[k] for k in ("signups", "queued_mail", "bounces"))
    if not held and found is None:
        raise UsageError(f"nothing is held about {addr}")
    return out


@dataclass
class ErasureReport:
    email: str
    subscriber_id: int | None = None
    subscriptions: int = 0
    ledger_rows: int = 0
    signups: int = 0
    queued_mail: int = 0
    bounces: int = 0
    files: list[Path] = field(default_factory=list)  # outbox files to delete after commit

    def summary(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber_id,
            "subscriptions": self.subscriptions,
            "ledger_rows": self.ledger_rows,
            "signups": self.signups,
            "queued_mail": self.queued_mail,
            "bounces": self.bounces,
            "files": len(self.files),
        }


def erase(
    config: Config, conn: Connection, hasher: AddressHasher, email: str, now: datetime
) -> ErasureReport:
    """Delete the person behind ``email`` (see the module doc), in the caller's
    transaction. Returns what was done; delete ``report.files`` after the commit."""
    addr = normalize_email(email)
    rep = ErasureReport(addr)
    suppress(conn, hasher, addr, reason="erased", now=now, keep_address=False)
    outbox = config.resolve(config.delivery.outbox_dir)
    su, q, b = s.signups, s.mail_queue, s.bounces
    rep.signups = int(conn.execute(sa.delete(su).where(su.c.email == addr)).rowcount or 0)
    for qid, kind in conn.execute(sa.select(q.c.id, q.c.kind).where(q.c.recipient == addr)):
        rep.files.append(outbox / "_mail" / kind / f"{qid}.eml")
    rep.queued_mail = int(conn.execute(sa.delete(q).where(q.c.recipient == addr)).rowcount or 0)
    sub = conn.execute(sa.select(s.subscribers).where(s.subscribers.c.email == addr)).first()
    cond = b.c.recipient == addr
    if sub is not None:
        sid = int(sub.id)
        rep.subscriber_id = sid
        cond = sa.or_(cond, b.c.subscriber_id == sid)
        t, d, e = s.subscriptions, s.deliveries, s.editions
        rep.subscriptions = int(
            conn.execute(sa.delete(t).where(t.c.subscriber_id == sid)).rowcount or 0
        )
        tomb = f"erased-{sid}@invalid"
        for nl, slot in conn.execute(
            sa.select(e.c.newsletter, e.c.slot)
            .join(d, d.c.edition_id == e.c.id)
            .where(d.c.subscriber_id == sid)
        ):
            rep.files.append(outbox / nl / edition_key(slot) / f"{sid}.eml")
        rep.ledger_rows = int(
            conn.execute(
                sa.update(d).where(d.c.subscriber_id == sid).values(email=tomb, last_error=None)
            ).rowcount
            or 0
        )
        conn.execute(
            sa.update(s.subscribers)
            .where(s.subscribers.c.id == sid)
            .values(email=tomb, name="", status="erased", hard_bounces=0, updated=now)
        )
    rep.bounces = int(
        conn.execute(
            sa.update(b)
            .where(cond)
            .values(raw=None, recipient=None, subscriber_id=None, note="", effects={})
        ).rowcount
        or 0
    )
    return rep


def remove_files(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        try:
            p.unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n
