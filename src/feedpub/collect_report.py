"""What a collect reports, per source and in all (no I/O, light to import: ``feedpub
publish`` prints a report before it imports the collect itself; see feedpub.quiet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedpub.errors import ContentError

KINDS = ("new", "updated", "unchanged", "retracted", "scheduled", "rejected")


@dataclass
class SourceReport:
    name: str
    status: str  # ok / not-modified / disabled / error
    error: str | None
    counts: dict[str, int]
    warnings: list[str]
    # Folder sources: the fingerprint of the walk (feedpub.sources.walk), when all of it
    # could be read.
    listing_fingerprint: dict[str, str] | None = None


@dataclass
class CollectReport:
    now: datetime
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rejected: list[ContentError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceReport] = field(default_factory=list)
    generation: int = 0
    changed: bool = False
    run_id: int | None = None  # this collect's row in ``runs``

    @property
    def source_errors(self) -> list[SourceReport]:
        return [r for r in self.sources if r.status in ("error", "disabled")]

    def summary(self) -> dict[str, object]:
        """What ``runs`` records of this collect (``feedpub status`` reads it)."""
        return {
            "counts": self.counts,
            "generation": self.generation,
            "sources": [
                {"name": r.name, "status": r.status, "error": r.error} for r in self.sources
            ],
        }
