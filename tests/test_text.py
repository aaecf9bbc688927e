"""Text rules shared by the sources and the feeds (feedpub.text): a plain line keeps what
merely looks like a tag ("a < b and c > d") and decodes entities exactly once, so a title
reaches every feed format as written; URLs are made absolute and percent-encoded, never
twice.

(Properties over any input: test_text_props.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import feedparser
from lxml import etree

from feedpub import text
from feedpub.collect import collect
from feedpub.feeds import build_feeds
from feedpub.text import absolute_url, plain_line, sanitize_html

from .conftest import Newsroom
from .test_collect import md

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"


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


def test_urls_with_spaces_or_non_ascii_are_percent_encoded() -> None:
    # "image: /media/my photo.jpg" gave <enclosure url="…/my photo.jpg"> (W3C: "url must
    # be a full URL", "Invalid character in a URI"); raw HTML links likewise.
    base = "https://n.example/post/a/"
    assert absolute_url("/media/my photo.jpg", base) == "https://n.example/media/my%20photo.jpg"
    assert absolute_url("/ü/päge?q=é#frä", base) == (
        "https://n.example/%C3%BC/p%C3%A4ge?q=%C3%A9#fr%C3%A4"
    )
    assert absolute_url("https://bücher.example/x", base) == "https://xn--bcher-kva.example/x"
    for same in ("https://n.example/a%20b?x=1&y=2#top", "mailto:desk@n.example"):
        assert absolute_url(same, base) == same  # never encoded twice
    html = sanitize_html('<a href="/annual report.pdf">r</a>', base)
    assert html == '<a href="https://n.example/annual%20report.pdf">r</a>'


def test_a_control_character_between_words_becomes_a_space() -> None:
    assert text.plain_line("Control\u000bchars\u001fin title") == "Control chars in title"
    assert text.one_line("a\x00b\x7fc") == "a b c"
    # Nothing XML 1.0 forbids survives, in one-line fields or in bodies.
    body = text.sanitize_html("<p>one\x0ctwo\ufffethree\ud800</p>", "https://example.org/")
    assert body == "<p>one twothree</p>"


def test_summaries_read_an_image_as_its_alt_text() -> None:
    fragment = (
        '<p>See the <img src="https://example.org/c.png" alt="chart of losses"> and '
        "<img alt='map &amp; legend' src=x> up. <img src=y> Then <b>more</b>.</p>"
    )
    assert text.summarize(fragment) == "See the chart of losses and map & legend up. Then more."
    assert text.word_count(fragment) == 12
    # An alt that looks like markup stays text; an image without alt adds nothing.
    assert text.html_to_text('<p>x <img alt="&lt;b&gt;bold&lt;/b&gt;"> y</p>') == "x <b>bold</b> y"
