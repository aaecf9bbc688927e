"""Sign-up rate limits: fixed-window counters in the store (every ``feedpub serve``
process behind one proxy shares them), a pure decision on the counts.

- per client address: at most ``[signup] max_per_ip_per_hour`` sign-up POSTs an hour
  (IPv6 clients are counted per /64, what one subscriber line usually gets);
- per email address: at most ``max_mails_per_address_per_day`` confirmation mails a UTC
  day, so nobody can flood someone's mailbox through our form (list bombing). The key is
  the address's keyed hash: the table holds no address.

``now`` always comes from the caller (one clock).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s

Verdict = Literal["ok", "ip-limited", "address-limited"]


@dataclass(frozen=True, slots=True)
class Limits:
    per_ip_per_hour: int
    mails_per_address_per_day: int


def decide(ip_hits: int, address_hits: int | None, limits: Limits) -> Verdict:
    """Counts include the request being decided. Pure."""
    if ip_hits > limits.per_ip_per_hour:
        return "ip-limited"
    if address_hits is not None and address_hits > limits.mails_per_address_per_day:
        return "address-limited"
    return "ok"


def hour_window(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def day_window(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def client_key(ip: str) -> str:
    """``ip:<address>``; an IPv6 address is cut to its /64."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "ip:" + ip.strip()[:100]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return f"ip:{addr.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{addr}/64', strict=False)}"
    return f"ip:{addr}"


def hit(conn: Connection, key: str, window: datetime) -> int:
    """Count one more event in (key, window) and return the count. Atomic on SQLite
    (the transaction holds the write lock) and PostgreSQL (INSERT ... ON CONFLICT)."""
    t = s.rate_counters
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        lite = sqlite.insert(t).values(key=key, window_start=window, hits=1)
        conn.execute(
            lite.on_conflict_do_update(
                index_elements=[t.c.key, t.c.window_start], set_={"hits": t.c.hits + 1}
            )
        )
    elif name == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(t).values(key=key, window_start=window, hits=1)
        conn.execute(
            pg.on_conflict_do_update(
                index_elements=[t.c.key, t.c.window_start], set_={"hits": t.c.hits + 1}
            )
        )
    else:  # pragma: no cover - other backends: update, else insert
        n = conn.execute(
            sa.update(t).where(t.c.key == key, t.c.window_start == window).values(hits=t.c.hits + 1)
        ).rowcount
        if not n:
            conn.execute(sa.insert(t).values(key=key, window_start=window, hits=1))
    return int(
        conn.execute(
            sa.select(t.c.hits).where(t.c.key == key, t.c.window_start == window)
        ).scalar_one()
    )


def peek(conn: Connection, key: str, window: datetime) -> int:
    t = s.rate_counters
    found = conn.execute(
        sa.select(t.c.hits).where(t.c.key == key, t.c.window_start == window)
    ).scalar_one_or_none()
    return int(found or 0)


def prune(conn: Connection, now: datetime) -> int:
    """Forget windows that ended more than a day ago."""
    t = s.rate_counters
    res = conn.execute(sa.delete(t).where(t.c.window_start < now - timedelta(days=2)))
    return int(res.rowcount or 0)
