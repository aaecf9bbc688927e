"""The pasted-article layout (``*.txt``), as a newsroom copies an article off its web page:

Ukraine’s Security and Peace Agreement          <- title
- Iruni Kalupahana                               <- bullets: author(s),
- Feb 15                                         <-   date (a year is optional),
- 2 min read                                     <-   reading time
Iruni Kalupahana JadeTimes Staff                 <- byline
I. Kalupahana is a ... reporter covering Russia-Ukraine war   <- bio naming the beat

Ukraine’s Pre-2014 Borders                       <- short line, no final punctuation: heading
The idea of returning Ukraine to ...             <- paragraph
Comments                                         <- web page residue: dropped
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from feedpub.errors import ContentError
from feedpub.sources.dates import (
    RELATIVE_DATE,
    DateParseError,
    latest_month_day,
    month_day_without_year,
    to_aware,
)

_READ = re.compile(r"^(\d+)\s*min(?:ute)?s?\s+read$", re.I)
_COVERING = re.compile(r"\bcovering\s+(?:the\s+)?(?P<beat>.+?)\s*\.?$", re.I)
_BIO = re.compile(r"\s(?:is an?|covers)\s", re.I)
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|&|\band\b)\s*")
_FINAL_PUNCT = tuple(".!?:;,…\"”’')»")
_TRAILING_RESIDUE = re.compile(
    r"^(comments?|\d+\s+comments?|comments?\s*(?:\(\d+\)|:\s*\d+)|share|like)$", re.I
)
HEADING_MAX_CHARS = 90
HEADING_MAX_WORDS = 12


@dataclass
class Pasted:
    title: str
    title_line: int
    authors: list[str] = field(default_factory=list)
    published: datetime | None = None
    date_inferred: bool = False
    reading_minutes: int | None = None
    bios: list[tuple[str, str]] = field(default_factory=list)  # (author, bio line)
    bio_beats: list[tuple[str, str]] = field(default_factory=list)  # (author, beat title)
    html: str = ""
    warnings: list[str] = field(default_factory=list)


def is_heading(line: str) -> bool:
    """A short line without final punctuation, or a short title-case question
    ("What Happens Next?"; not "Is this the end?")."""
    s = line.strip()
    if not (0 < len(s) <= HEADING_MAX_CHARS and len(s.split()) <= HEADING_MAX_WORDS):
        return False
    if s.endswith("?") and not s.endswith(("??", '"?', "”?")):
        long_words = [w for w in re.findall(r"\w+", s[:-1]) if len(w) > 3]
        return bool(long_words) and all(w[0].isupper() for w in long_words)
    return not s.endswith(_FINAL_PUNCT)


def parse_pasted(
    text: str, source: str, *, now: datetime, tz: ZoneInfo, first_line: int = 1
) -> Pasted:
    raw = text.split("\n")
    lines = [(first_line + i, ln.rstrip()) for i, ln in enumerate(raw)]
    while lines and not lines[0][1].strip():
        lines.pop(0)
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        raise ContentError(
            source, "empty article: the first line must be the title", line=first_line
        )
    title_no, title = lines.pop(0)
    result = Pasted(title=title.strip(), title_line=title_no)

    # Bullets: author(s), date, reading time, in any order.
    while lines and lines[0][1].lstrip().startswith("- "):
        no, ln = lines.pop(0)
        value = ln.strip()[2:].strip()
        if m := _READ.match(value):
            result.reading_minutes = int(m.group(1))
        elif RELATIVE_DATE.match(value):
            raise ContentError(
                source,
                f"date {value!r} is relative to when the page was viewed: write the date "
                "itself (like 'Nov 20, 2026') or add 'date:' front matter",
                line=no,
            )
        elif md := month_day_without_year(value):
            try:
                result.published = latest_month_day(md[0], md[1], now, tz)
            except DateParseError as e:
                raise ContentError(source, str(e), line=no) from None
            result.date_inferred = True
            result.warnings.append(
                f"{source}:{no}: date {value!r} has no year; took {result.published:%Y} "
                f"(the latest {value} not after the collection time). Add the year to be exact."
            )
        elif _looks_like_date(value):
            try:
                result.published = to_aware(value, tz)
            except DateParseError as e:
                raise ContentError(source, str(e), line=no) from None
        else:
            result.authors.extend(a for a in _AUTHOR_SPLIT.split(value) if a)

    # Byline and bio lines, up to the first blank line or the first line that is neither.
    while lines and lines[0][1].strip():
        no, ln = lines[0]
        s = ln.strip()
        author = _line_author(s, result.authors)
        if author is None:
            break
        if m := _COVERING.search(s):
            result.bio_beats.append((author, m.group("beat").strip()))
            result.bios.append((author, s))
        elif _BIO.search(s):
            result.bios.append((author, s))
        elif not is_heading(s):  # not a byline ("Name JadeTimes Staff"): the body begins
            break  # ("Perera said on Friday ...")
        lines.pop(0)

    # Body: drop the web page's trailing residue ("Comments").
    while lines and (not lines[-1][1].strip() or _TRAILING_RESIDUE.match(lines[-1][1].strip())):
        lines.pop()
    parts: list[str] = []
    for _no, ln in lines:
        s = ln.strip()
        if not s:
            continue
        if is_heading(s):
            parts.append(f"<h2>{html.escape(s, quote=False)}</h2>")
        else:
            parts.append(f"<p>{html.escape(s, quote=False)}</p>")
    result.html = "\n".join(parts)
    return result


def _looks_like_date(value: str) -> bool:
    return bool(re.search(r"\d{4}", value)) and bool(re.search(r"\d{1,2}[-/ .]|[A-Za-z]{3}", value))


def _line_author(line: str, authors: list[str]) -> str | None:
    """The author a byline/bio line speaks of: full name or 'I. Surname' initial form."""
    low = line.lower()
    for a in authors:
        if low.startswith(a.lower()):
            return a
        parts = a.split()
        if len(parts) >= 2:
            initial = f"{parts[0][0]}. {parts[-1]}".lower()
            if low.startswith(initial) or low.startswith(parts[-1].lower() + " "):
                return a
    return None
