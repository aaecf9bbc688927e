"""The contract between sources and ``collect``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from feedpub.config import Config
from feedpub.errors import ContentError
from feedpub.sources.walk import FolderHint, Scope
from feedpub.types import ParsedArticle


@dataclass
class SourceContext:
    config: Config
    now: datetime  # aware; the collection time
    # This source's persisted key/value state (table source_state): ETag, Last-Modified,
    # moved URL, disabled flag... A source may change it; collect saves it afterwards.
    state: dict[str, str] = field(default_factory=dict)
    # key -> content hash of what the store already holds for this source.
    known: dict[str, str] = field(default_factory=dict)
    # Folder sources: key -> (size, mtime_ns) recorded when the file was last parsed.
    file_stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Changes whenever configuration that shapes parsed articles changes (beats, URL
    # patterns, time zone): a source must then re-parse even "unchanged" inputs.
    rules_fingerprint: str = ""
    # Keys of this source's stored articles that are not retracted.
    live_keys: set[str] = field(default_factory=set)
    # Folder sources, from ``feedpub publish``'s quiet record (feedpub.quiet) when it still
    # describes the store: the folders whose fingerprint it matches (their files are as
    # recorded in ``file_stats``). None: no such record (the whole folder is walked).
    hint: FolderHint | None = None
    # With a hint, on SQLite: the folders it trusts, counted in the store, and only the
    # other folders' stats read into ``file_stats`` (feedpub.collect_scope). None: the
    # stats of the whole folder are in ``file_stats``.
    scope: Scope | None = None


@dataclass
class SourceResult:
    name: str
    articles: list[ParsedArticle] = field(default_factory=list)
    rejected: list[ContentError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Keys known to be unchanged without parsing (folder: same size+mtime; feed: 304).
    unchanged_keys: set[str] = field(default_factory=set)
    # True when the source listed *everything* it holds: stored keys absent from
    # ``articles`` and ``unchanged_keys`` are then retracted. A feed is a window: False.
    complete: bool = False
    # "ok", "not-modified", "disabled", "error"
    status: str = "ok"
    error: str | None = None
    # Folder sources: key -> (size, mtime_ns) of every file parsed or skipped as unchanged.
    file_stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Inputs present but deliberately not published (draft: true).
    drafts: set[str] = field(default_factory=set)
    # Folder sources: the fingerprint of the walk (sources.walk), None when some of it
    # could not be read. ``feedpub publish`` keeps it to prove a later run has nothing to do.
    listing_fingerprint: dict[str, str] | None = None
    # Folder sources read with a scope (SourceContext.scope): files of the trusted folders,
    # present and unchanged, that are in neither ``unchanged_keys`` nor ``file_stats``.
    unlisted: int = 0


class Source(Protocol):
    name: str

    def fetch(self, ctx: SourceContext) -> SourceResult: ...
