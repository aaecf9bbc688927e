"""The pure edition decider: which articles go into the next edition."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from feedpub.digest.edition import cap_section, plan_edition, selection_for
from feedpub.types import ArticleStatus
from tests.test_digest_support import NOW, article, hours_ago

BEATS = ("russia-ukraine-war", "technology", "world")


def _plan(arts, previous=None, sent=(), lookback=timedelta(days=1)):  # type: ignore[no-untyped-def]
    return plan_edition(
        arts,
        beats=BEATS,
        previous_cutoff=previous,
        lookback=lookback,
        already_sent=set(sent),
        now=NOW,
    )


def test_first_edition_reaches_back_only_the_lookback() -> None:
    arts = [article(1, "world", hours_ago(2)), article(2, "world", hours_ago(25))]
    plan = _plan(arts)
    assert plan.article_ids == (arts[0].id,)
    assert plan.since == NOW - timedelta(days=1)
    assert plan.cutoff == NOW


def test_next_edition_starts_at_previous_cutoff_and_skips_sent_ids() -> None:
    arts = [
        article(1, "world", hours_ago(1)),
        article(2, "world", hours_ago(3)),  # before the previous cutoff
        article(3, "technology", hours_ago(1.5)),
    ]
    plan = _plan(arts, previous=hours_ago(2), sent={arts[2].id})
    assert plan.article_ids == (arts[0].id,)


def test_retracted_future_and_other_beats_are_left_out() -> None:
    arts = [
        article(1, "world", hours_ago(1), status=ArticleStatus.RETRACTED),
        article(2, "world", NOW + timedelta(minutes=1)),
        article(3, "sports", hours_ago(1)),
        article(4, None, hours_ago(1)),
        article(5, "world", hours_ago(1)),
    ]
    assert _plan(arts).article_ids == (arts[4].id,)


def test_beats_in_configured_order_newest_first() -> None:
    arts = [
        article(1, "world", hours_ago(1)),
        article(2, "russia-ukraine-war", hours_ago(5)),
        article(3, "world", hours_ago(0.5)),
        article(4, "technology", hours_ago(2)),
    ]
    plan = _plan(arts)
    assert plan.beats == BEATS
    assert plan.sections[2] == ("world", (arts[2].id, arts[0].id))


def test_empty_plan() -> None:
    assert _plan([]).empty


def test_selection_for_subscriber() -> None:
    assert selection_for((), BEATS, {"world", "technology"}) == ("technology", "world")
    assert selection_for(("world",), BEATS, {"world", "technology"}) == ("world",)
    # chose a beat with nothing new: no message
    assert selection_for(("russia-ukraine-war",), BEATS, {"world"}) == ()


def test_cap_section() -> None:
    assert cap_section(["a", "b", "c"], 2) == (("a", "b"), 1)
    assert cap_section(["a"], 2) == (("a",), 0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*BEATS, "other"]),
            st.floats(min_value=-10, max_value=60),
            st.booleans(),
        ),
        max_size=30,
    ),
    st.one_of(st.none(), st.floats(min_value=0, max_value=48)),
)
def test_plan_invariants(items, prev_hours) -> None:  # type: ignore[no-untyped-def]
    arts = [
        article(
            i,
            beat,
            hours_ago(h),
            status=ArticleStatus.PUBLISHED if pub else ArticleStatus.RETRACTED,
        )
        for i, (beat, h, pub) in enumerate(items)
    ]
    previous = hours_ago(prev_hours) if prev_hours is not None else None
    sent = {a.id for a in arts[::3]}
    plan = _plan(arts, previous=previous, sent=sent)
    by_id = {a.id: a for a in arts}
    ids = plan.article_ids
    assert len(ids) == len(set(ids))
    for aid in ids:
        a = by_id[aid]
        assert aid not in sent
        assert a.status == ArticleStatus.PUBLISHED
        assert plan.since < a.published <= NOW
        assert a.beat in BEATS
    assert list(plan.beats) == [b for b in BEATS if b in plan.beats]


def test_late_arrivals_are_sent_once_and_backfills_never() -> None:
    """A story dated before the last cutoff but collected after it (a feed polled just
    after the edition froze) goes into the next edition; a source that backfills old
    stories mails none of them; the first edition keeps to its lookback."""
    from dataclasses import replace

    previous = hours_ago(1)
    late = replace(article(1, "world", hours_ago(1.2)), first_seen=hours_ago(0.9))
    seen_in_time = replace(article(2, "world", hours_ago(1.5)), first_seen=hours_ago(1.4))
    backfill = replace(article(3, "world", hours_ago(24 * 30)), first_seen=hours_ago(0.5))
    plan = _plan([late, seen_in_time, backfill], previous=previous)
    assert plan.article_ids == (late.id,)
    # Once sent it is never sent again.
    assert _plan([late], previous=hours_ago(0.1), sent={late.id}).empty
    # First edition: nothing before the lookback, however recently collected.
    old = replace(article(4, "world", hours_ago(25)), first_seen=hours_ago(0.1))
    assert _plan([old]).empty
