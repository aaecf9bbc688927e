"""What goes into the next edition: a pure decider (stored state + ``now`` in, plan out).

Rules (issue 4):
- first edition of a newsletter: articles published in ``(now - lookback, now]`` — never
  the whole archive (rss2email's first run mails every old entry; we don't);
- next editions: articles published after the previous edition's cutoff, up to ``now``;
  plus *late arrivals*: articles collected after that cutoff though dated shortly before
  it (an upstream feed polled at 07:03 with a story published at 06:58 would otherwise
  miss the 07:00 edition and every later one). "Shortly" is ``LATE_ARRIVAL``, so adding
  a source that backfills months of old stories mails none of them;
- only articles readers can see: status "published" and ``published <= now``; a
  retraction before freezing leaves the article out;
- an article id already sent in an earlier edition of the newsletter is never sent again
  (a correction keeps its id, so it is not resent; Mailchimp re-sends on edited dates);
- only the newsletter's beats, in its configured order; newest first within a beat.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from feedpub.types import Article, ArticleStatus

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EditionPlan:
    since: datetime  # exclusive
    cutoff: datetime  # inclusive
    sections: tuple[tuple[str, tuple[str, ...]], ...]  # (beat, article ids newest first)

    @property
    def empty(self) -> bool:
        return not self.sections

    @property
    def article_ids(self) -> tuple[str, ...]:
        return tuple(a for _, ids in self.sections for a in ids)

    @property
    def beats(self) -> tuple[str, ...]:
        return tuple(b for b, _ in self.sections)


LATE_ARRIVAL = timedelta(days=2)


def is_candidate(a: Article, since: datetime, now: datetime, first_edition: bool) -> bool:
    """Published, visible by ``now``, and new for an edition whose window opens at ``since``."""
    if a.status != ArticleStatus.PUBLISHED or a.published > now:
        return False
    if a.published > since:
        return True
    return (
        not first_edition
        and a.first_seen is not None
        and a.first_seen > since
        and a.published > since - LATE_ARRIVAL
    )


def edition_since(previous_cutoff: datetime | None, lookback: timedelta, now: datetime) -> datetime:
    return previous_cutoff if previous_cutoff is not None else now - lookback


def plan_edition(
    articles: Iterable[Article],
    *,
    beats: Sequence[str],
    previous_cutoff: datetime | None,
    lookback: timedelta,
    already_sent: Collection[str],
    now: datetime,
) -> EditionPlan:
    since = edition_since(previous_cutoff, lookback, now)
    by_beat: dict[str, list[Article]] = {b: [] for b in beats}
    for a in articles:
        if not is_candidate(a, since, now, previous_cutoff is None):
            continue
        if a.id in already_sent or a.beat not in by_beat:
            continue
        by_beat[a.beat].append(a)
    sections = []
    for b in beats:
        items = sorted(by_beat[b], key=lambda a: (a.published, a.id), reverse=True)
        if items:
            sections.append((b, tuple(a.id for a in items)))
    return EditionPlan(since=since, cutoff=now, sections=tuple(sections))


def selection_for(
    chosen: Sequence[str], newsletter_beats: Sequence[str], edition_beats: Collection[str]
) -> tuple[str, ...]:
    """The beats one subscriber gets in this edition, in the newsletter's order: those they
    chose (none chosen = all of the newsletter's) that have something new. Empty: no mail."""
    wanted = set(chosen) if chosen else set(newsletter_beats)
    return tuple(b for b in newsletter_beats if b in wanted and b in edition_beats)


def cap_section(items: Sequence[T], cap: int) -> tuple[tuple[T, ...], int]:
    """(items shown, how many more) for a beat capped at ``cap`` articles."""
    return tuple(items[:cap]), max(0, len(items) - cap)
