"""What the feed and pages sources share: keys, slugs, authors, beats, first-seen dates,
disabled/moved state. Pure functions of their inputs (``now`` passed in), no I/O."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import unquote, urlsplit

from feedpub.config import Config
from feedpub.sources.folder import match_beat_title  # one rule for beat names in prose

# The keys ``feedpub status`` reads live with the code that reads them (upstream_state),
# so that ``status`` need not import this module (and the parsers it imports).
from feedpub.sources.upstream_state import S_DISABLED as S_DISABLED
from feedpub.sources.upstream_state import S_DISABLED_URL as S_DISABLED_URL
from feedpub.sources.upstream_state import S_MOVED_FROM as S_MOVED_FROM
from feedpub.sources.upstream_state import S_URL as S_URL
from feedpub.text import absolute_url, plain_line, slugify
from feedpub.types import Image

_COVERING = re.compile(r"\bcovering\s+(?:the\s+)?(?P<beat>.+?)\s*\.?$", re.I)
_LEAD_P = re.compile(r"^\s*(?:<figure\b.*?</figure>\s*|<img\b[^>]*>\s*)*<p>(.*?)</p>", re.S | re.I)

MAX_KEY = 1000  # articles.source_key is String(1000)

# source_state keys (per source). Documented in docs/sources.md.
S_ETAG = "etag"
S_LAST_MODIFIED = "last_modified"
S_VALIDATORS_FOR = "validators_for"  # the URL the validators belong to
S_CONFIG_FP = "config_fp"  # fingerprint of the source settings that shape articles
S_BODY_SHA = "body_sha"  # hash of the last body parsed (servers without validators)
S_UNDATED = "undated"  # JSON {key: ISO date first seen} for entries without a date


def stable_key(entry_id: str | None, link: str | None) -> str | None:
    """The upstream entry id (RSS guid, Atom id, JSON Feed id), else its link."""
    key = (entry_id or "").strip() or (link or "").strip()
    if not key:
        return None
    if len(key) > MAX_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def slug_for(url: str, title: str) -> str:
    """The last path segment of the article URL when it reads like a slug, else the title's."""
    path = unquote(urlsplit(url).path).rstrip("/")
    last = path.rsplit("/", 1)[-1]
    last = re.sub(r"\.(html?|php|aspx?)$", "", last, flags=re.I)
    if last and re.search(r"[A-Za-z]", last) and not re.fullmatch(r"index|default", last, re.I):
        return slugify(last)
    return slugify(title)


def split_authors(names: Iterable[str]) -> tuple[str, ...]:
    """Ghost and some CMSs join co-authors into one dc:creator ("Ana Lima, Sam Cho").
    Split on ',', '&' and 'and' only when every part looks like a full name."""
    out: list[str] = []
    for raw in names:
        name = plain_line(raw)
        parts = [p.strip() for p in re.split(r",|&|\band\b", name) if p.strip()]
        if len(parts) > 1 and all(len(p.split()) >= 2 for p in parts):
            out.extend(parts)
        elif name:
            out.append(name)
    return tuple(dict.fromkeys(out))


def beat_for(
    tags: Iterable[str],
    beat: str | None,
    mapping: Mapping[str, str],
    config: Config,
    warnings: list[str],
) -> str | None:
    """cfg.beat, else the first tag found in map_tags_to_beats (case-insensitive), else None
    (collect then applies the author/tag/keyword/default rules)."""
    if beat:
        return beat
    if not mapping:
        return None
    lowered = {k.strip().lower(): v for k, v in mapping.items()}
    defined = {b.slug for b in config.beats}
    for t in tags:
        slug = lowered.get(t.strip().lower())
        if slug is None:
            continue
        if slug not in defined:
            msg = f"map_tags_to_beats maps {t!r} to {slug!r}, which is not a defined beat; ignored"
            if msg not in warnings:
                warnings.append(msg)
            continue
        return slug
    return None


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:32]


class FirstSeen:
    """Dates for entries that carry none: ``now`` on first sight, kept in source state so
    later fetches give the same date (and the content hash does not move)."""

    def __init__(self, state: Mapping[str, str]) -> None:
        try:
            raw = json.loads(state.get(S_UNDATED, "{}"))
        except json.JSONDecodeError:
            raw = {}
        self._dates: dict[str, str] = raw if isinstance(raw, dict) else {}
        self._used: set[str] = set()

    def date(self, key: str, now: datetime) -> tuple[datetime, bool]:
        """(date, is_new). Known keys get the date they were first seen."""
        self._used.add(key)
        if key in self._dates:
            try:
                return datetime.fromisoformat(self._dates[key]), False
            except ValueError:
                pass
        self._dates[key] = now.isoformat()
        return now, True

    def published(
        self, key: str, given: datetime | None, now: datetime, where: str
    ) -> tuple[datetime, list[str]]:
        """The stated date, else the date ``key`` was first seen (with a warning the
        first time, naming ``where``)."""
        if given is not None:
            return given, []
        date, new = self.date(key, now)
        return date, [f"{where}; dated {date.isoformat()} (first seen)"] if new else []

    def save(self, state: dict[str, str], keep: Iterable[str]) -> None:
        """Keep dates of keys seen now or still stored; drop the rest (bounded state)."""
        keep_set = set(keep) | self._used
        dates = {k: v for k, v in self._dates.items() if k in keep_set}
        if dates:
            state[S_UNDATED] = json.dumps(dates, sort_keys=True)
        else:
            state.pop(S_UNDATED, None)


def check_disabled(state: dict[str, str], url: str) -> str | None:
    """The reason the source is disabled, or None. A disabled flag recorded for another
    URL (the operator changed the config) is cleared: the new URL gets a fresh try."""
    reason = state.get(S_DISABLED)
    if reason is None:
        return None
    if state.get(S_DISABLED_URL, url) != url:
        state.pop(S_DISABLED, None)
        state.pop(S_DISABLED_URL, None)
        return None
    return reason


def disable(state: dict[str, str], url: str, reason: str, now: datetime) -> str:
    text = f"{reason} (since {now.isoformat(timespec='seconds')})"
    state[S_DISABLED] = text
    state[S_DISABLED_URL] = url
    return text


def escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def drop_leading_title(content: str, title: str) -> str:
    m = re.match(r"\s*<h1[^>]*>(.*?)</h1>", content, re.S | re.I)
    if m and plain_line(m.group(1)).casefold() == title.casefold():
        return content[m.end() :]
    return content


def _author_named(text: str, authors: tuple[str, ...]) -> str | None:
    """The author a byline/bio paragraph speaks of: full name or 'I. Surname' form."""
    low = text.casefold()
    for a in authors:
        parts = a.split()
        if low.startswith(a.casefold()):
            return a
        if len(parts) >= 2 and low.startswith(f"{parts[0][0]}. {parts[-1]}".casefold()):
            return a
    return None


def bio_paragraphs(
    content: str, authors: tuple[str, ...], config: Config
) -> tuple[str, tuple[tuple[str, str, str | None], ...]]:
    """Wix-style pages open the body with a byline and a bio naming the beat
    ("I. Kalupahana is a … reporter covering Russia-Ukraine war"), like the pasted layout.
    Move them out of the body into author_bios so collect can file the article."""
    bios: list[tuple[str, str, str | None]] = []
    for _ in range(3):
        m = _LEAD_P.match(content)
        if not m:
            break
        text = plain_line(m.group(1))
        author = _author_named(text, authors) if len(text) <= 300 else None
        if author is None:
            break
        cov = _COVERING.search(text)
        if cov or " is a " in text or " is an " in text:
            beat = match_beat_title(config, cov.group("beat")) if cov else None
            bios.append((author, text, beat))
        elif len(text.split()) > len(author.split()) + 4:
            break  # an ordinary first paragraph that happens to start with the name
        content = content[: m.start(1) - 3] + content[m.end() :]
    return content, tuple(bios)


def image(
    src: str | None,
    base: str,
    mime: str | None = None,
    length: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Image | None:
    """The lead image, its URL made absolute against the article (None if unusable);
    a size only when both width and height are known."""
    url = absolute_url(src, base) if src else None
    if not (width and height):
        width = height = None
    return Image(url, mime, length, width=width, height=height) if url else None


# ---- conditional GET (RFC 9110 §13.1) -------------------------------------------------------


def validators(
    state: Mapping[str, str], url: str, fp: str, usable: bool
) -> tuple[bool, str | None, str | None]:
    """(current, ETag, Last-Modified) for the next GET of ``url``. ``current``: what is
    remembered belongs to this very URL and configuration, and ``usable`` (the caller can
    act on a 304: something stored, nothing left pending); otherwise nothing is sent."""
    current = usable and state.get(S_VALIDATORS_FOR) == url and state.get(S_CONFIG_FP) == fp
    if not current:
        return False, None, None
    return True, state.get(S_ETAG), state.get(S_LAST_MODIFIED)


def remember_validators(
    state: dict[str, str], url: str, fp: str, etag: str | None, last_modified: str | None
) -> None:
    """Keep the validators of a full answer for ``url`` (drop any the server stopped sending)."""
    for key, value in ((S_ETAG, etag), (S_LAST_MODIFIED, last_modified)):
        if value:
            state[key] = value
        else:
            state.pop(key, None)
    state[S_VALIDATORS_FOR] = url
    state[S_CONFIG_FP] = fp
