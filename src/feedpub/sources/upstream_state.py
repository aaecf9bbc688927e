"""Read (and clear) what upstream sources remember about themselves in ``source_state``:
disabled after an HTTP 410, moved by a permanent redirect. For ``feedpub status`` and
for an operator who wants a disabled source tried again without changing its URL."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s

S_DISABLED = "disabled"  # why and when the source was disabled (HTTP 410)
S_DISABLED_URL = "disabled_url"  # the configured URL it was disabled for
S_URL = "url"  # where the upstream moved (permanent redirect)
S_MOVED_FROM = "moved_from"  # the configured URL that moved


@dataclass(frozen=True, slots=True)
class UpstreamState:
    source: str
    disabled: str | None  # why and since when (HTTP 410), or None
    moved_to: str | None  # where a permanent redirect pointed, while the config says otherwise
    moved_from: str | None


def upstream_states(conn: Connection) -> list[UpstreamState]:
    """Sources that are disabled or have moved, by name."""
    t = s.source_state
    rows = conn.execute(
        sa.select(t.c.source, t.c.key, t.c.value).where(
            t.c.key.in_([S_DISABLED, S_URL, S_MOVED_FROM])
        )
    ).all()
    by_source: dict[str, dict[str, str]] = {}
    for r in rows:
        by_source.setdefault(r.source, {})[r.key] = r.value
    return [
        UpstreamState(name, kv.get(S_DISABLED), kv.get(S_URL), kv.get(S_MOVED_FROM))
        for name, kv in sorted(by_source.items())
    ]


def reenable(conn: Connection, source: str) -> bool:
    """Forget that ``source`` was disabled (inside a write transaction). True if it was."""
    t = s.source_state
    res = conn.execute(
        sa.delete(t).where(t.c.source == source, t.c.key.in_([S_DISABLED, S_DISABLED_URL]))
    )
    return bool(res.rowcount)
