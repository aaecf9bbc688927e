"""What a build reports (``BuildReport``), and when the next scheduled article comes due."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.feeds import websub
from feedpub.types import ArticleStatus


@dataclass
class BuildReport:
    written: list[str] = field(default_factory=list)  # paths relative to the output dir
    unchanged: int = 0  # documents checked whose fingerprint matched (not rendered)
    generation: int = 0  # the store generation the feeds now reflect
    skipped: bool = False  # the O(1) check found nothing to do
    removed: list[str] = field(default_factory=list)
    changed_feeds: list[str] = field(default_factory=list)  # URLs of changed current feeds
    items_written: int = 0  # item entries rendered, all formats
    feeds_planned: int = 0
    ping: websub.PingReport | None = None
    seconds: float = 0.0
    uploaded: int = 0  # objects put to [output] url (s3://), changed ones only
    refused: dict[str, str] = field(default_factory=dict)  # article id -> why a writer refused it
    summarized: dict[str, int] = field(default_factory=dict)  # path -> items cut to summaries

    def summary(self) -> dict[str, object]:
        return {
            "written": len(self.written),
            "unchanged": self.unchanged,
            "removed": len(self.removed),
            "generation": self.generation,
            "skipped": self.skipped,
            "items_written": self.items_written,
            "changed_feeds": self.changed_feeds,
            **({"uploaded": self.uploaded} if self.uploaded else {}),
            "refused": self.refused,
        }


def next_due(conn: Connection, now: datetime) -> datetime | None:
    """The earliest publication time still in the future (the plan hides it until then)."""
    a = s.articles
    due: datetime | None = conn.execute(
        sa.select(sa.func.min(a.c.published)).where(
            a.c.status.in_((ArticleStatus.PUBLISHED.value, ArticleStatus.SCHEDULED.value)),
            a.c.published > now,
        )
    ).scalar_one_or_none()
    if due is not None and due.tzinfo is None:  # func.min bypasses the column type
        due = due.replace(tzinfo=UTC)
    return due
