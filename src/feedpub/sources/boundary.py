"""The one boundary every article passes on its way out of a source (docs/content.md).

Sources parse; this module makes sure what they hand to ``collect`` is something every
writer can publish: no XML-forbidden character in any field, one-line fields on one
line, every URL an absolute http(s) URI, dates that exist in UTC and in every zone, and
values that fit the store's columns. What can be cleaned is cleaned (the same way on
every run, so ids stay stable); what cannot is a ``BoundaryError`` naming the field,
which rejects that one input and nothing else.
"""

from __future__ import annotations

import dataclasses
import re

from feedpub.errors import ContentError
from feedpub.sources.base import SourceResult
from feedpub.sources.dates import DateParseError, in_range, shown
from feedpub.text import (
    MAX_URL_CHARS,
    clean_text,
    http_url,
    is_clean,
    is_http_uri,
    one_line,
    plain_line,
)
from feedpub.types import Image, ParsedArticle

# The store's column widths (schema.py): a longer value would fail the whole transaction.
MAX_ID = 500
MAX_SLUG = 500
MAX_KEY = 1000
MAX_BEAT = 200
MAX_IMAGE_TYPE = 100
MAX_LANGUAGE = 35
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


class BoundaryError(ContentError):
    """An article field no writer could publish; ``field`` names it."""

    def __init__(self, key: str, field: str, reason: str, *, line: int | None = None) -> None:
        super().__init__(key, reason, line=line)
        self.field = field


def screen(article: ParsedArticle, base_url: str) -> ParsedArticle:
    """``article`` with every field publishable, or BoundaryError. Idempotent: an article
    that already passed comes back equal."""
    key = article.key
    if len(key) > MAX_KEY:
        raise BoundaryError(key[:80] + "…", "key", f"path or key longer than {MAX_KEY} characters")
    title = plain_line(article.title)
    if not title:
        raise BoundaryError(key, "title", "no title: add 'title: ...' to the front matter")
    url = _url(article.url, base_url, key, "url")
    slug = one_line(article.slug)
    if not slug:
        raise BoundaryError(key, "slug", "slug is empty once control characters are removed")
    if len(slug) > MAX_SLUG:
        raise BoundaryError(key, "slug", f"slug longer than {MAX_SLUG} characters")
    explicit_id = one_line(article.explicit_id) if article.explicit_id else None
    if explicit_id is not None and len(explicit_id) > MAX_ID:
        raise BoundaryError(key, "id", f"id longer than {MAX_ID} characters")
    beat = one_line(article.beat) if article.beat else None
    if beat is not None and len(beat) > MAX_BEAT:
        raise BoundaryError(key, "beat", f"beat longer than {MAX_BEAT} characters")
    for name, value in (("date", article.published), ("updated", article.updated)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise BoundaryError(key, name, f"{name} has no time zone")
        try:
            in_range(value)
        except DateParseError as e:
            raise BoundaryError(key, name, str(e)) from None
    language = article.language
    if language is not None and (len(language) > MAX_LANGUAGE or not _LANGUAGE.fullmatch(language)):
        language = None
    content = article.content_html
    if not is_clean(content):  # sources sanitize; this only guards a source's bug
        content = clean_text(content)
    summary = one_line(article.summary)
    screened = dataclasses.replace(
        article,
        title=title,
        url=url,
        slug=slug,
        explicit_id=explicit_id or None,
        beat=beat or None,
        authors=_names(article.authors),
        tags=_names(article.tags),
        summary=summary,
        content_html=content,
        image=_image(article.image, url, key),
        language=language,
        author_bios=tuple(
            (plain_line(a), plain_line(b), one_line(s) if s else None)
            for a, b, s in article.author_bios
            if plain_line(a)
        ),
        warnings=tuple(clean_text(w) for w in article.warnings),
    )
    return article if screened == article else screened


def screen_result(result: SourceResult, base_url: str) -> None:
    """Screen every article of ``result`` in place; a refused one moves to ``rejected``."""
    kept: list[ParsedArticle] = []
    for article in result.articles:
        try:
            kept.append(screen(article, base_url))
        except ContentError as e:
            result.rejected.append(e)
    result.articles = kept


def _url(value: str, base: str, key: str, field: str) -> str:
    if is_http_uri(value):
        return value
    if len(value) > MAX_URL_CHARS:
        raise BoundaryError(key, field, f"{field} is longer than {MAX_URL_CHARS} characters")
    url = http_url(value, base)
    if url is None:
        raise BoundaryError(
            key,
            field,
            f"{field} {shown(value)} is not an absolute http(s) URL: write it like "
            "https://example.com/path (mailto: and other schemes cannot be an article's address)",
        )
    return url


def _image(image: Image | None, article_url: str, key: str) -> Image | None:
    if image is None:
        return None
    url = _url(image.url, article_url, key, "image")
    mime = one_line(image.type) if image.type else None
    if mime is not None and (len(mime) > MAX_IMAGE_TYPE or not _MIME.fullmatch(mime)):
        raise BoundaryError(
            key, "image", f"image type {shown(image.type)} is not a media type like image/jpeg"
        )
    alt = plain_line(image.alt) if image.alt else None
    out = dataclasses.replace(image, url=url, type=mime or None, alt=alt or None)
    return image if out == image else out


def _names(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in (plain_line(v) for v in values) if n))
