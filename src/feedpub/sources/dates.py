"""Date parsing for content: aware datetimes; a date without a zone is in the site's zone."""

from __future__ import annotations

import re
import reprlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import parser as _dateutil

_MON = r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
# "Feb 15" and "15 Feb" (day first, as British and South Asian pages write it).
_MONTH_DAY = (re.compile(rf"^{_MON}\s+{_DAY}$", re.I), re.compile(rf"^{_DAY}\s+{_MON}$", re.I))
# What a page shows instead of a date for a recent post: it means nothing in a file.
RELATIVE_DATE = re.compile(
    r"^(?:\d+|an?|one)\s+(?:second|minute|min|hour|hr|day|week|month|year)s?\s+ago$"
    r"|^(?:today|yesterday|just now)$",
    re.I,
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


class DateParseError(ValueError):
    pass


def to_aware(value: object, tz: ZoneInfo) -> datetime:
    """A front matter value (YAML date/datetime or text) as an aware datetime.

    Strict: a date is a full day, month and year ("2026-10" and "20/1/6" are refused, not
    guessed), its offset is a real one (under 24 hours) and it can be written in UTC and
    any time zone (years 1 to 9999 once converted)."""
    try:
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, date):
            dt = datetime.combine(value, time(0, 0))
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            if len(text) > 100:
                raise DateParseError(
                    f"cannot read date {shown(text)}: write it like 2026-11-20 09:30"
                )
            try:
                dt = _dateutil.isoparse(text) if _ISO_DAY.match(text) else _free_form(text)
            except DateParseError:
                raise
            except ValueError:
                dt = _free_form(text)
        else:
            raise DateParseError(f"cannot read date {shown(value)}: write it like 2026-11-20 09:30")
        dt = dt.replace(tzinfo=tz) if dt.tzinfo is None else dt
        in_range(dt)
    except DateParseError:
        raise
    except (ValueError, OverflowError, TypeError) as e:
        raise DateParseError(
            f"cannot read date {shown(value)} ({shown(str(e), 120)}): write it like "
            "2026-11-20 09:30 or 2026-11-20T09:30:00+05:30"
        ) from None
    return dt


# An ISO 8601 date with its day ("2026-11-20", "2026-11-20T09:30+05:30"); "2026-10" is not.
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[T ])")
_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
_MARGIN = timedelta(days=2)


def in_range(dt: datetime) -> datetime:
    """``dt`` when it can be shown in UTC and in any zone (years 1 to 9999 with two days to
    spare); DateParseError otherwise ("9999-12-31 23:59:59-12:00" overflows in UTC)."""
    try:
        utc = dt.astimezone(UTC)
        ok = (
            datetime.min.replace(tzinfo=UTC) + _MARGIN
            < utc
            < datetime.max.replace(tzinfo=UTC) - _MARGIN
        )
    except (OverflowError, ValueError):
        ok = False
    if not ok:
        raise DateParseError(
            f"date {dt.isoformat()} is out of range: write a date between the years 1 and 9999"
        )
    return dt


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters: what an error message quotes of
    a value (a YAML alias bomb's expanded value must not be formatted whole)."""
    return _REPR.repr(value)[: limit + 20]


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


_NUMERIC_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")
# Two defaults differing in year, month and day: a part the text leaves out shows up as
# a difference (dateutil silently fills it from the default, i.e. the machine's clock).
_DEFAULTS = (datetime(2000, 1, 1), datetime(2004, 2, 2))


def _free_form(text: str) -> datetime:
    """'Nov 20, 2026 9:30 AM', '20 November 2026', '20/11/2026': a full date, never guessed."""
    m = _NUMERIC_DMY.match(text)
    if m and int(m.group(1)) <= 12 and int(m.group(2)) <= 12 and m.group(1) != m.group(2):
        a, b, y = int(m.group(1)), int(m.group(2)), m.group(3)
        raise DateParseError(
            f"date {shown(text)} is ambiguous (day {a} of month {b}, or month {a} day {b}?): "
            f"write it as {y}-{b:02d}-{a:02d} or {y}-{a:02d}-{b:02d}"
        )
    if not _FOUR_DIGIT_YEAR.search(text):
        raise DateParseError(
            f"cannot read date {shown(text)} (no four-digit year): write it like 2026-11-20 09:30"
        )
    try:
        parsed = [_dateutil.parse(text, default=d) for d in _DEFAULTS]
    except (ValueError, OverflowError):
        raise DateParseError(
            f"cannot read date {shown(text)}: write it like 2026-11-20 09:30 or "
            "2026-11-20T09:30:00+05:30"
        ) from None
    if parsed[0].date() != parsed[1].date():
        raise DateParseError(
            f"date {shown(text)} has no full day, month and year: write it like 2026-11-20 09:30"
        )
    return parsed[0]


def month_day_without_year(text: str) -> tuple[int, int] | None:
    """'Feb 15' or '15 Feb' -> (2, 15); None when the text is not a month and day alone."""
    m = _MONTH_DAY[0].match(text.strip()) or _MONTH_DAY[1].match(text.strip())
    if not m:
        return None
    mon = _MONTHS[m.group("mon").lower()[:3]]
    return mon, int(m.group("day"))


def latest_month_day(month: int, day: int, now: datetime, tz: ZoneInfo) -> datetime:
    """The latest midnight (site zone) on month/day not after ``now``."""
    local_now = now.astimezone(tz)
    for year in range(local_now.year, local_now.year - 8, -1):
        try:
            candidate = datetime(year, month, day, tzinfo=tz)
        except ValueError:  # Feb 29 in a non-leap year
            continue
        if candidate <= local_now:
            return candidate
    raise DateParseError(f"no past date matches {month}/{day}")
