"""Date parsing for content: aware datetimes; a date without a zone is in the site's zone."""

from __future__ import annotations

import re
from datetime import date, datetime, time
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
    """A front matter value (YAML date/datetime or text) as an aware datetime."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time(0, 0))
    elif isinstance(value, str) and value.strip():
        try:
            dt = _dateutil.isoparse(value.strip())
        except ValueError:
            try:
                dt = _dateutil.parse(value.strip())
            except (ValueError, OverflowError):
                raise DateParseError(
                    f"cannot read date {value!r}: write it like 2026-11-20 09:30 or "
                    "2026-11-20T09:30:00+05:30"
                ) from None
    else:
        raise DateParseError(f"cannot read date {value!r}: write it like 2026-11-20 09:30")
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


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
