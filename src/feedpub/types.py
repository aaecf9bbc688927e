"""Plain value types shared by every stage. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime


class ArticleStatus(enum.StrEnum):
    PUBLISHED = "published"
    SCHEDULED = "scheduled"  # dated in the future: stored, published when its time comes
    RETRACTED = "retracted"  # file deleted or turned into a draft: kept, never shown


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    type: str | None = None  # MIME type, e.g. image/jpeg
    length: int | None = None  # bytes, when known
    alt: str | None = None  # text for readers who cannot see it (front matter alt/caption)
    width: int | None = None  # pixels, when known
    height: int | None = None

    def fingerprint(self) -> str:
        """What the content hash sees. Written as before alt/width/height existed when they
        are unset, so upgrading does not make every illustrated article "updated"."""
        base = f"Image(url={self.url!r}, type={self.type!r}, length={self.length!r})"
        if self.alt is None and self.width is None and self.height is None:
            return base
        return f"{base[:-1]}, alt={self.alt!r}, width={self.width!r}, height={self.height!r})"


@dataclass(frozen=True, slots=True)
class ParsedArticle:
    """What a source makes of one input, before identity and change detection.

    All text is clean: no XML-forbidden characters; ``content_html`` is sanitized
    with absolute URLs; ``title`` and ``summary`` are plain text.
    """

    source: str  # source name
    key: str  # stable key within the source (relative path, upstream entry id, page URL)
    title: str
    url: str  # canonical, absolute
    slug: str
    authors: tuple[str, ...]
    published: datetime  # aware
    updated: datetime | None  # aware; only when the input states it
    content_html: str
    summary: str
    reading_minutes: int
    tags: tuple[str, ...] = ()
    beat: str | None = None  # explicit beat slug from the input (front matter)
    image: Image | None = None
    explicit_id: str | None = None  # front matter ``id``
    author_bios: tuple[tuple[str, str, str | None], ...] = ()  # (author, bio, beat slug)
    date_inferred: bool = False  # the year was guessed (pasted layout "Feb 15")
    draft: bool = False
    language: str | None = None
    warnings: tuple[str, ...] = ()

    def fingerprint_fields(self) -> tuple[object, ...]:
        """Fields whose change is a real edit (drives ``updated`` and re-publication)."""
        return (
            self.title,
            self.url,
            self.authors,
            self.published.astimezone(UTC).isoformat(),
            self.updated.astimezone(UTC).isoformat() if self.updated else None,
            self.content_html,
            self.summary,
            self.tags,
            self.beat,
            self.image.fingerprint() if self.image else None,
            self.language,
        )


@dataclass(frozen=True, slots=True)
class Article:
    """A stored article as the writers (feeds, digests) see it."""

    id: str  # permanent: never changes once published
    url: str
    slug: str
    title: str
    authors: tuple[str, ...]
    author_slugs: tuple[str, ...]
    beat: str | None
    tags: tuple[str, ...]
    published: datetime
    updated: datetime
    summary: str
    content_html: str
    reading_minutes: int
    status: ArticleStatus
    image: Image | None = None
    language: str | None = None
    changed_generation: int = 0
    first_seen: datetime | None = None  # when collect first stored it
    extra: dict[str, str] = field(default_factory=dict)
