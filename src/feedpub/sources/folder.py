"""The content folder source: ``*.md`` / ``*.html`` with YAML front matter and ``*.txt`` in
the pasted layout. Unchanged files (same size and mtime) are skipped before reading."""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from feedpub.config import Config, FolderSourceConfig
from feedpub.errors import ContentError, is_rust_panic
from feedpub.sources import markdown
from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.boundary import BoundaryError, screen
from feedpub.sources.dates import DateParseError, shown, to_aware
from feedpub.sources.frontmatter import KNOWN_KEYS, split_front_matter
from feedpub.sources.parse_pool import parse_all
from feedpub.sources.pasted import parse_pasted
from feedpub.sources.walk import Tally, trusted_folders, walk
from feedpub.text import (
    clean_text,
    http_url,
    one_line,
    plain_line,
    reading_minutes,
    sanitize_html,
    slugify,
    summarize,
)
from feedpub.types import Image, ParsedArticle

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
MAX_FILE_BYTES = 2_000_000  # the default of [[sources]] max_file_bytes


class FolderSource:
    def __init__(self, cfg: FolderSourceConfig, name: str) -> None:
        self.cfg = cfg
        self.name = name

    def fetch(self, ctx: SourceContext) -> SourceResult:
        listing = self.scan(ctx)
        self.parse(listing.result, listing.jobs, listing, ctx)
        return listing.result

    def scan(self, ctx: SourceContext) -> Listing:
        """Walk the folder: the files unchanged since they were last read (same size and
        mtime) go into the result as such; the others are the jobs to parse."""
        result = SourceResult(name=self.name, complete=True)
        listing = Listing(result)
        root = ctx.config.resolve(self.cfg.path)
        if not root.is_dir():
            result.status = "error"
            result.error = f"{root}: content folder not found; create it or fix [[sources]] path"
            result.complete = False  # never retract everything because a mount is missing
            return listing
        reuse = ctx.state.get("rules_fingerprint") == ctx.rules_fingerprint
        unreadable: list[tuple[str, str]] = []
        tally = Tally()
        hint = ctx.hint if reuse else None
        assert ctx.scope is None or reuse, "a scope is read only for a listing it can reuse"
        trusted: dict[str, list[int]] = {}
        if hint is not None and ctx.scope is not None:
            # Only the walked folders' stats were read (feedpub.collect_scope): the
            # trusted folders' files are counted, not named.
            trusted = ctx.scope.trusted
            result.unlisted = sum(sums[0] for sums in trusted.values())
        elif hint is not None:
            # The folders the quiet record vouches for are not listed: their files are
            # the recorded ones, unchanged (only the changed folders are walked).
            trusted, walked = trusted_folders(hint, ctx.file_stats)
            result.file_stats = dict(ctx.file_stats)
            for keys in walked.values():
                for key in keys:
                    del result.file_stats[key]
            result.unchanged_keys = set(result.file_stats)
        for rel, path, st_size, st_mtime in walk(
            root, unreadable, tally, trusted=trusted, dirs=hint.dirs if hint else frozenset()
        ):
            stat = (st_size, st_mtime)
            if reuse and ctx.file_stats.get(rel) == stat:
                result.unchanged_keys.add(rel)
                result.file_stats[rel] = stat
                continue
            listing.jobs.append((rel, path))
            listing.stats[rel] = stat
        if unreadable:
            # What we could not list may still be there: retract nothing this time.
            result.complete = False
            result.warnings.extend(
                f"{folder}: cannot list this folder ({err}); its articles stay as they are "
                "until it can be read"
                for folder, err in unreadable
            )
        ctx.state["rules_fingerprint"] = ctx.rules_fingerprint
        result.listing_fingerprint = tally.fingerprint()
        return listing

    def parse(
        self,
        result: SourceResult,
        jobs: Sequence[tuple[str, str]],
        listing: Listing,
        ctx: SourceContext,
    ) -> None:
        """Parse ``jobs`` (every file through parse_file; many of them on every core)
        into ``result``, in the order of ``jobs``."""
        for rel, parsed in self.outcomes(jobs, ctx):
            add_outcome(result, rel, parsed, listing.stats[rel])

    def outcomes(
        self, jobs: Sequence[tuple[str, str]], ctx: SourceContext
    ) -> Iterator[tuple[str, ParsedArticle | ContentError]]:
        """(relative path, parsed article or why it was rejected) of each job, in order."""
        return parse_all(parse_file, jobs, ctx, self.cfg, self.name)


@dataclass
class Listing:
    """What a walk of the folder found: ``result`` holds the unchanged files; ``jobs``
    the (relative, full) paths to parse, ``stats`` their (size, mtime_ns)."""

    result: SourceResult
    jobs: list[tuple[str, str]] = field(default_factory=list)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)


def add_outcome(
    result: SourceResult, rel: str, parsed: ParsedArticle | ContentError, stat: tuple[int, int]
) -> None:
    if isinstance(parsed, ContentError):
        result.rejected.append(parsed)
        return
    result.file_stats[rel] = stat
    if parsed.draft:
        result.drafts.add(rel)
        return
    result.articles.append(parsed)
    result.warnings.extend(parsed.warnings)


def read_text(path: Path, rel: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text, cleaned of XML-forbidden characters; ContentError when it cannot
    be read, is bigger than ``max_bytes`` (checked before reading it whole), empty,
    binary or not UTF-8."""
    try:
        with path.open("rb") as f:
            # At most max_bytes + 1 bytes, asked for as what the file holds: read(n)
            # allocates n bytes first (2 MB for a 7 kB file took longer than reading it).
            size = os.fstat(f.fileno()).st_size
            raw = f.read(min(size, max_bytes) + 1)
            if size < max_bytes and len(raw) == size + 1:  # it grew since: read on
                raw += f.read(max_bytes - size)
    except OSError as e:
        raise ContentError(rel, f"cannot read file: {e.strerror or type(e).__name__}") from None
    if len(raw) > max_bytes:
        raise ContentError(
            rel,
            f"file is bigger than {max_bytes:,} bytes (max_file_bytes of its [[sources]] "
            "entry): split it, or raise the limit",
        )
    if not raw.strip():
        raise ContentError(rel, "empty file: write a title and a body, or delete the file")
    if b"\x00" in raw[:8192]:
        raise ContentError(rel, "binary file, not text: content files must be UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ContentError(
            rel,
            f"not UTF-8 text (byte 0x{raw[e.start]:02x}): save the file as UTF-8",
            line=line,
        ) from None
    # XML-forbidden characters go before anything else sees the text (YAML refuses them too).
    return clean_text(text)


def parse_file(
    path: Path, rel: str, ctx: SourceContext, cfg: FolderSourceConfig, source: str
) -> ParsedArticle:
    """One content file as an article, or ContentError naming the file (and line): any
    failure while reading one file is that file's rejection, never the source's."""
    text = ""
    try:
        text = read_text(path, rel, cfg.max_file_bytes)
        parsed = _parse(text, path, rel, ctx, cfg, source)
        return screen(parsed, ctx.config.site.base_url)
    except BoundaryError as e:
        line = e.line or (_key_line(text, e.field) if e.field != "title" else None)
        raise ContentError(e.source, e.reason, line=line) from None
    except ContentError:
        raise
    except RecursionError:
        raise ContentError(rel, "nested too deeply to read") from None
    except MemoryError:
        raise ContentError(rel, "too big to read in memory") from None
    except Exception as e:  # a parser bug must reject this file alone
        raise ContentError(
            rel, f"cannot read this file ({type(e).__name__}: {shown(str(e), 200)})"
        ) from None
    except BaseException as e:  # a Rust extension's panic, too; not KeyboardInterrupt
        if not is_rust_panic(e):
            raise
        raise ContentError(
            rel, f"cannot read this file (a parser panicked: {shown(str(e), 200)})"
        ) from None


def _parse(
    text: str, path: Path, rel: str, ctx: SourceContext, cfg: FolderSourceConfig, source: str
) -> ParsedArticle:
    config = ctx.config
    tz = config.site.tz
    doc = split_front_matter(text, rel)
    meta = doc.meta
    warnings = [
        f"{rel}: unknown front matter key {shown(k)} ignored" for k in meta if k not in KNOWN_KEYS
    ]
    suffix = path.suffix.lower()

    title: str | None = _str(meta.get("title"), rel, "title", text)
    authors = _names(meta.get("author", meta.get("authors")), rel, text, "author")
    published: datetime | None = None
    date_inferred = False
    minutes: int | None = None
    bios: list[tuple[str, str, str | None]] = []
    body_title_line = doc.body_line

    if suffix == ".txt":
        pasted = parse_pasted(doc.body, rel, now=ctx.now, tz=tz, first_line=doc.body_line)
        if title is None:
            title = pasted.title
        body_title_line = pasted.title_line
        authors = authors or pasted.authors
        published, date_inferred = pasted.published, pasted.date_inferred
        minutes = pasted.reading_minutes
        warnings.extend(pasted.warnings)
        beat_of = {a: bt for a, bt in pasted.bio_beats}
        for author, bio in pasted.bios:
            slug = match_beat_title(config, beat_of.get(author))
            if beat_of.get(author) and slug is None:
                warnings.append(
                    f"{rel}: bio names beat {beat_of[author]!r}, which is not configured; "
                    "add it to [[beats]] to file this author's articles there"
                )
            bios.append((author, bio, slug))
        body_html = pasted.html
    elif suffix in (".md", ".markdown"):
        body = doc.body
        h1, rest = _leading_h1(body)
        if title is None:
            title, body = h1, rest
        elif h1 is not None and plain_line(h1).casefold() == plain_line(title).casefold():
            body = rest  # the title again as "# Title": readers would show it twice
        body_html = markdown.render(body, on_fallback=lambda why: warnings.append(f"{rel}: {why}"))
    else:
        body_html = doc.body

    if not title or not plain_line(title):
        raise ContentError(
            rel,
            "no title: add 'title: ...' to the front matter",
            line=1 if meta else body_title_line,
        )
    title = plain_line(title)

    if "date" in meta:
        try:
            published = to_aware(meta["date"], tz)
        except DateParseError as e:
            raise ContentError(rel, str(e), line=_key_line(text, "date")) from None
        date_inferred = False
    if published is None:
        raise ContentError(
            rel, "no date: add 'date: 2026-11-20 09:30' to the front matter (site time zone)"
        )
    updated = None
    if meta.get("updated") is not None:
        try:
            updated = to_aware(meta["updated"], tz)
        except DateParseError as e:
            raise ContentError(rel, str(e), line=_key_line(text, "updated")) from None
        if updated > ctx.now >= published:
            warnings.append(
                f"{rel}:{_key_line(text, 'updated') or 1}: updated {meta['updated']} is in the "
                "future; the feeds show the collection time instead. Fix the date."
            )

    # A title with nothing to transliterate (emoji only) takes its slug from the file name
    # (slugified only then: most titles give a slug).
    slug = (
        _str(meta.get("slug"), rel, "slug", text)
        or slugify(title, fallback="")
        or slugify(PurePosixPath(rel).stem)
    )
    url_value = _str(meta.get("url"), rel, "url", text)
    base = config.site.base_url
    if url_value:
        url = http_url(url_value, base)
        if url is None:
            raise ContentError(
                rel,
                f"url {shown(url_value)} is not an absolute http(s) URL: write it like "
                "https://example.com/path (mailto: and other schemes cannot be an article's "
                "address)",
                line=_key_line(text, "url"),
            )
    else:
        # 'x"' or 'a b' are percent-encoded; "/" stays a path separator (as before).
        if any(seg in (".", "..") for seg in one_line(slug).split("/")):
            raise ContentError(
                rel, f"slug {shown(slug)} has a '.' or '..' segment", line=_key_line(text, "slug")
            )
        path_part = config.site.article_path.format(slug=quote(one_line(slug), safe="/"))
        url = http_url(base + path_part.lstrip("/"), base) or base

    content_html = sanitize_html(body_html, url)
    summary_value = _str(meta.get("summary"), rel, "summary", text)
    summary = plain_line(summary_value) if summary_value else summarize(content_html)
    tags = _names(meta.get("tags"), rel, text, "tags")
    beat = _str(meta.get("beat"), rel, "beat", text)
    image = _image(meta.get("image"), url, rel, text)
    explicit_id = _str(meta.get("id"), rel, "id", text)
    draft = _bool(meta.get("draft", False), rel, text)
    language = _str(meta.get("language", meta.get("lang")), rel, "language", text)
    if language is not None:
        # BCP 47 (RFC 5646), as feeds need it: "en_US" is written "en-US".
        tag = language.strip().replace("_", "-")
        if not _LANGUAGE.fullmatch(tag):
            warnings.append(
                f"{rel}:{_key_line(text, 'language') or _key_line(text, 'lang') or 1}: "
                f"language {shown(language)} is not a language tag like 'en' or 'uk-UA'; ignored"
            )
        language = tag if _LANGUAGE.fullmatch(tag) else None
    if not authors and cfg.author:
        authors = [cfg.author]

    return ParsedArticle(
        source=source,
        key=rel,
        title=title,
        url=url,
        slug=slug,
        authors=_distinct(plain_line(a) for a in authors),
        published=published,
        updated=updated,
        content_html=content_html,
        summary=summary,
        reading_minutes=minutes if minutes else reading_minutes(content_html),
        tags=_distinct(plain_line(t) for t in tags),
        beat=beat.strip() if beat else (cfg.beat or None),
        image=image,
        explicit_id=explicit_id.strip() if explicit_id else None,
        author_bios=tuple((plain_line(a), plain_line(b), s) for a, b, s in bios),
        date_inferred=date_inferred,
        draft=draft,
        language=language,
        warnings=tuple(warnings),
    )


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    """The non-empty ``values``, each once, in their first order."""
    return tuple(dict.fromkeys(v for v in values if v))


def match_beat_title(config: Config, title: str | None) -> str | None:
    """A beat named in prose ('Russia-Ukraine war') -> its slug, matching title or slug."""
    if not title:
        return None
    norm = slugify(title)
    for b in config.beats:
        if norm in (b.slug, slugify(b.title)):
            return b.slug
    return None


def _leading_h1(body: str) -> tuple[str | None, str]:
    lines = body.split("\n")
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        if ln.startswith("# "):
            return ln[2:].strip(), "\n".join(lines[:i] + lines[i + 1 :])
        break
    return None, body


def _key_line(text: str, key: str) -> int | None:
    for i, ln in enumerate(text.split("\n"), 1):
        if ln.startswith(f"{key}:"):
            return i
    return None


def _str(value: Any, rel: str, key: str, text: str = "") -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ContentError(
        rel,
        f"front matter {key!r} must be text, not {type(value).__name__}",
        line=_key_line(text, key),
    )


def _names(value: Any, rel: str, text: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")] if "," in value else [value]
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return [str(v) for v in value]
    line = _key_line(text, key) or (_key_line(text, "authors") if key == "author" else None)
    raise ContentError(rel, f"front matter {key!r} must be a name or a list of names", line=line)


def _bool(value: Any, rel: str, text: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ContentError(rel, "draft must be true or false", line=_key_line(text, "draft"))


def _image(value: Any, base: str, rel: str, text: str) -> Image | None:
    if value is None or value == "":
        return None
    length = None
    mime = None
    alt: str | None = None
    size: dict[str, int | None] = {"width": None, "height": None}
    if isinstance(value, dict):
        src = value.get("url") or value.get("src")
        mime = value.get("type")
        raw_len = value.get("length")
        if raw_len is not None:
            if not isinstance(raw_len, int) or raw_len < 0:
                raise ContentError(
                    rel, "image length must be a number of bytes", line=_key_line(text, "image")
                )
            length = raw_len
        for dim in size:
            raw = value.get(dim)
            if raw is not None:
                if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= 100_000:
                    raise ContentError(
                        rel,
                        f"image {dim} must be a number of pixels, e.g. {dim}: 1200",
                        line=_key_line(text, "image"),
                    )
                size[dim] = raw
        # alt: what the image shows; else its caption. Never the headline (a blocked image
        # would show the headline twice).
        for key in ("alt", "caption"):
            raw = value.get(key)
            if raw is not None and not isinstance(raw, str | int | float):
                raise ContentError(rel, f"image {key} must be text", line=_key_line(text, "image"))
            if raw is not None and alt is None:
                alt = plain_line(str(raw)) or None
    else:
        src = value
    if not isinstance(src, str):
        raise ContentError(
            rel,
            "image must be a URL or {url, alt, caption, width, height, type, length}",
            line=_key_line(text, "image"),
        )
    url = http_url(src, base)
    if url is None:
        raise ContentError(
            rel,
            f"image {shown(src)} is not an absolute http(s) URL",
            line=_key_line(text, "image"),
        )
    if mime is None:
        mime = mimetypes.guess_type(url.split("?")[0])[0]
    return Image(
        url=url,
        type=str(mime) if mime else None,
        length=length,
        alt=alt,
        width=size["width"],
        height=size["height"],
    )
