"""The suppression list: addresses we never mail again (complaints, hard bounces, erased
people, the operator's additions), checked at import, sign-up and send (freeze).

Entries are keyed by an HMAC-SHA256 of the normalized address under the token key
(``[secrets] token_key_env``, with its own domain-separation label), so an erased
person leaves only a hash nobody can reverse without the key, yet their address is still
recognised if it comes back in a CSV. Keep the key: a new key makes old hashes unmatched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s

REASONS = ("complaint", "hard-bounce", "erased", "manual")


class AddressHasher:
    """Keyed hashes of addresses (precomputed HMAC state)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("empty token key")
        self._base = hmac.new(key, b"suppression\x00", digestmod=hashlib.sha256)

    def __call__(self, email: str) -> str:
        h = self._base.copy()
        h.update(email.strip().lower().encode("utf-8"))
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Suppression:
    address_hash: str
    email: str | None
    reason: str
    created: datetime
    bounce_id: int | None
    note: str


def find(conn: Connection, address_hash: str) -> Suppression | None:
    t = s.suppressions
    r = conn.execute(sa.select(t).where(t.c.address_hash == address_hash)).first()
    if r is None:
        return None
    return Suppression(r.address_hash, r.email, r.reason, r.created, r.bounce_id, r.note)


def is_suppressed(conn: Connection, address_hash: str) -> bool:
    t = s.suppressions
    return (
        conn.execute(sa.select(t.c.address_hash).where(t.c.address_hash == address_hash)).first()
        is not None
    )


def suppress(
    conn: Connection,
    hasher: AddressHasher,
    email: str,
    *,
    reason: str,
    now: datetime,
    bounce_id: int | None = None,
    note: str = "",
    keep_address: bool = True,
) -> bool:
    """Add an address. Returns False when it was already suppressed (left as it was,
    except that an erasure forgets the address it kept)."""
    if reason not in REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    t = s.suppressions
    key = hasher(email)
    existing = find(conn, key)
    if existing is not None:
        if not keep_address and existing.email is not None:
            conn.execute(sa.update(t).where(t.c.address_hash == key).values(email=None))
        return False
    conn.execute(
        sa.insert(t).values(
            address_hash=key,
            email=email.strip().lower() if keep_address else None,
            reason=reason,
            created=now,
            bounce_id=bounce_id,
            note=note[:2000],
        )
    )
    return True


def unsuppress(conn: Connection, address_hash: str) -> bool:
    t = s.suppressions
    return bool(conn.execute(sa.delete(t).where(t.c.address_hash == address_hash)).rowcount)


def listing(conn: Connection, reason: str | None = None) -> list[Suppression]:
    t = s.suppressions
    q = sa.select(t).order_by(t.c.created, t.c.address_hash)
    if reason is not None:
        q = q.where(t.c.reason == reason)
    return [
        Suppression(r.address_hash, r.email, r.reason, r.created, r.bounce_id, r.note)
        for r in conn.execute(q)
    ]


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(s.suppressions)).scalar_one())


def filter_suppressed(conn: Connection, hasher: AddressHasher, emails: Iterable[str]) -> set[str]:
    """The addresses of ``emails`` that are suppressed (one indexed lookup per 500)."""
    by_hash = {hasher(e): e for e in emails}
    found: set[str] = set()
    keys = list(by_hash)
    t = s.suppressions
    for i in range(0, len(keys), 500):
        for h in conn.execute(
            sa.select(t.c.address_hash).where(t.c.address_hash.in_(keys[i : i + 500]))
        ).scalars():
            found.add(by_hash[h])
    return found
