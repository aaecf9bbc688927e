"""The number readers see on an edition ("No. 12"). Apart from ``digest.frozen`` so that
``feedpub status`` reads it without importing the edition builder and renderer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s


def issue_number(conn: Connection, newsletter: str, number: int | None = None) -> int:
    """The number readers see ("No. 12"): editions that were not skipped, up to and
    including ``number`` (None: the next one). Skipped editions leave no gaps."""
    e = s.editions
    q = sa.select(sa.func.count()).where(e.c.newsletter == newsletter, e.c.status != "skipped")
    if number is not None:
        return int(conn.execute(q.where(e.c.number <= number)).scalar_one())
    return int(conn.execute(q).scalar_one()) + 1
