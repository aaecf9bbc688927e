"""Review of content collection and feeds: inputs a newsroom really writes, read back
through the real CLI stages and real parsers (feedparser, lxml, json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import feedparser
from lxml import etree

from feedpub.collect import collect
from feedpub.feeds import build_feeds
from feedpub.feeds.plan import to_item
from feedpub.store import Store
from feedpub.text import plain_line
from feedpub.types import Article, ArticleStatus

from .conftest import Newsroom
from .test_feeds_plan import CFG, art

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"


def md(title: str, extra: str = "", body: str = "Body.") -> str:
    return f"---\ntitle: {title}\ndate: 2026-11-20 09:00\n{extra}---\n{body}\n"


def by_slug(store: Store) -> dict[str, Article]:
    with store.read() as conn:
        return {a.slug: a for a in store.load_articles(conn)}


# ---- titles: plain text, escaped exactly once, nothing lost ------------------------------


def test_plain_line_keeps_comparisons_that_merely_look_like_tags() -> None:
    # "<" ... ">" around prose is not a tag: it used to be cut out ("a < b and c > d" -> "a d").
    assert plain_line("a < b and c > d") == "a < b and c > d"
    assert plain_line("Inflation <5% for 3 years, >3% growth") == (
        "Inflation <5% for 3 years, >3% growth"
    )
    assert plain_line("AT&amp;T <i>wins</i> <!-- x -->again") == "AT&T wins again"


def test_plain_line_decodes_entities_once_whether_or_not_there_is_a_tag() -> None:
    # Decoding used to depend on a "<" somewhere in the value.
    assert plain_line("Tom &amp; Jerry") == "Tom & Jerry"
    assert plain_line("Tom &amp; <b>Jerry</b>") == "Tom & Jerry"
    assert plain_line("x &amp;lt; y") == "x &lt; y"


def test_stored_plain_text_is_published_verbatim() -> None:
    # Stored titles are plain text (sources' contract): the feeds must not strip "tags"
    # out of them or decode entities a second time (an upstream title "a < b and c > d").
    a = art(title="Why <blink> died: a < b and c > d", summary="x &lt; y", tags=("R&amp;D",))
    it = to_item(a, CFG, {}, {"tech": "Technology"})
    assert it.title == "Why <blink> died: a < b and c > d"
    assert it.summary == "x &lt; y"
    assert it.categories == ("Technology", "R&amp;D")


def test_title_with_comparison_and_entity_round_trips_through_every_format(
    newsroom: Newsroom,
) -> None:
    newsroom.write("a.md", md('"Rates < 5% > 2025 & Tom &amp; Jerry"'))
    config = newsroom.config()
    store = newsroom.store()
    collect(config, store, now=NOW)
    build_feeds(config, store, now=NOW, ping=False)
    out = config.output_dir
    want = "Rates < 5% > 2025 & Tom & Jerry"
    assert feedparser.parse(out / "rss.xml").entries[0].title == want
    assert feedparser.parse(out / "atom.xml").entries[0].title == want
    assert etree.parse(str(out / "atom.xml")).findtext(f"{ATOM}entry/{ATOM}title") == want
    assert json.loads((out / "feed.json").read_text())["items"][0]["title"] == want


# ---- identity across renames and sources -------------------------------------------------

TWO_SOURCES = """
[[sources]]
type = "folder"
name = "desk"
path = "desk"
"""


def test_file_moved_to_another_source_keeps_its_article(newsroom: Newsroom) -> None:
    # The second source ("desk") is planned after "content": its claim used to be undone
    # by the first source's retraction of the missing key, permanently (the moved file
    # is then skipped by size and mtime).
    newsroom.set_config(TWO_SOURCES)
    (newsroom.root / "desk").mkdir()
    newsroom.write("story.md", md("Moving story"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = by_slug(store)["moving-story"]
    (newsroom.content / "story.md").rename(newsroom.root / "desk" / "story.md")
    for _ in range(2):  # and stays published on the next collect
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=5))
        assert r.counts["retracted"] == 0 and r.counts["new"] == 0
        after = by_slug(store)["moving-story"]
        assert after.id == before.id and after.status is ArticleStatus.PUBLISHED
    # ...and the other way round (the claiming source planned first).
    (newsroom.root / "desk" / "story.md").rename(newsroom.content / "story.md")
    r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=10))
    assert r.counts["retracted"] == 0
    assert by_slug(store)["moving-story"].status is ArticleStatus.PUBLISHED


def test_counts_cover_every_file_after_a_rename(newsroom: Newsroom) -> None:
    # A renamed, otherwise unchanged file was counted in no column at all.
    newsroom.write("a.md", md("Alpha"))
    newsroom.write("b.md", md("Beta"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    (newsroom.content / "a.md").rename(newsroom.content / "a-renamed.md")
    r = collect(newsroom.config(), store, now=NOW)
    assert r.counts["unchanged"] == 2
    assert sum(r.counts.values()) == 2
