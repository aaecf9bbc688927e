"""Review of content collection and feeds: inputs a newsroom really writes, read back
through the real CLI stages and real parsers (feedparser, lxml, json)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from feedpub.collect import collect
from feedpub.errors import ContentError
from feedpub.feeds import build_feeds
from feedpub.feeds.feedgen_writer import render_atom, render_rss
from feedpub.feeds.model import FeedDoc
from feedpub.feeds.plan import to_item
from feedpub.feeds.stream_writer import render_atom as stream_atom
from feedpub.feeds.stream_writer import render_rss as stream_rss
from feedpub.sources.dates import DateParseError, to_aware
from feedpub.sources.pasted import Pasted, parse_pasted
from feedpub.store import Store
from feedpub.text import absolute_url, plain_line, sanitize_html
from feedpub.types import Article, ArticleStatus

from .conftest import Newsroom
from .test_feeds_plan import CFG, art
from .test_feeds_writers import info, item

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


# ---- the pasted layout (*.txt) ------------------------------------------------------------


def pasted(bullets: str, body: str) -> Pasted:
    return parse_pasted(
        f"A Title\n{bullets}\n\n{body}", "x.txt", now=NOW, tz=ZoneInfo("Asia/Colombo")
    )


def test_comment_count_residue_is_dropped() -> None:
    for residue in ("Comments (3)", "Comments(12)", "3 Comments", "Comments: 3", "Comments"):
        p = pasted("- Ann Lee\n- Nov 20, 2026", f"The article body.\n{residue}")
        assert p.html == "<p>The article body.</p>", residue


def test_day_before_month_bullet_is_a_date_not_an_author() -> None:
    # "- 15 Feb" (day first, as British and Sri Lankan pages write it) became an author.
    p = pasted("- Ann Lee\n- 15 Feb\n- 2 min read", "Body.")
    assert p.authors == ["Ann Lee"]
    assert p.published == datetime(2026, 2, 15, tzinfo=ZoneInfo("Asia/Colombo"))
    assert p.date_inferred


def test_relative_date_bullet_is_rejected_at_its_line() -> None:
    # "- 3 days ago" (what a page shows for a recent post) became a co-author "3 days ago".
    with pytest.raises(ContentError) as e:
        pasted("- Ann Lee\n- 3 days ago", "Body.")
    assert e.value.line == 3 and "3 days ago" in str(e.value)


def test_title_case_questions_are_headings_but_question_sentences_are_not() -> None:
    p = pasted(
        "- Ann Lee\n- Nov 20, 2026",
        "What Happens Next?\nThe answer is not clear.\nIs this the end?\nWhy now?",
    )
    assert p.html.split("\n") == [
        "<h2>What Happens Next?</h2>",
        "<p>The answer is not clear.</p>",
        "<p>Is this the end?</p>",
        "<p>Why now?</p>",
    ]


# ---- writers -----------------------------------------------------------------------------


def test_empty_body_writes_no_blank_content_element() -> None:
    # W3C: "content should not be blank" for <content type="html"></content>. An entry
    # with an alternate link needs no content (RFC 4287 §4.1.1); RSS content:encoded
    # is optional too. JSON Feed keeps content_html (one of content_html/text must exist).
    # Atom then carries the title as summary, like RSS <description>.
    doc = FeedDoc(info(), (item(1, content_html="", summary=""), item(2)))
    for render, stream in ((render_atom, stream_atom), (render_rss, stream_rss)):
        data = render(doc)
        assert stream(doc) == data
        root = etree.fromstring(data)
        contents = root.findall(f".//{ATOM}content") + root.findall(
            ".//{http://purl.org/rss/1.0/modules/content/}encoded"
        )
        assert len(contents) == 1 and contents[0].text
        parsed = feedparser.parse(data)
        assert not parsed.bozo and parsed.entries[0].title == "Title"
        # ...but still some text (W3C "Missing textual content"): the title.
        assert parsed.entries[0].summary == "Title"


# ---- dates ---------------------------------------------------------------------------------


def test_updated_stated_in_the_future_is_not_published_as_future(newsroom: Newsroom) -> None:
    # "updated: 2031-..." (a typo) made the item and the whole feed "updated" years ahead
    # (W3C "Implausible date"; the feed's date then never moved with new articles).
    p = newsroom.write("a.md", md("Alpha", extra="updated: 2031-01-01 10:00\n"))
    store = newsroom.store()
    r = collect(newsroom.config(), store, now=NOW)
    assert any("a.md" in w and "future" in w for w in r.warnings)
    assert by_slug(store)["alpha"].updated == NOW
    # Re-read unchanged (a rule change, a touch): nothing moves.
    p.write_text(p.read_text())
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r.counts["unchanged"] == 1 and not r.changed
    assert by_slug(store)["alpha"].updated == NOW
    build_feeds(newsroom.config(), store, now=NOW + timedelta(hours=1), ping=False)
    feed = json.loads((newsroom.config().output_dir / "feed.json").read_text())
    assert datetime.fromisoformat(feed["items"][0]["date_modified"]) == NOW


def test_beat_refiled_by_a_config_change_does_not_move_updated(newsroom: Newsroom) -> None:
    # A new keyword rule moves an old article to another beat. Its text did not change:
    # its `updated` (what readers show as "updated", Atom §4.2.15) must stay put.
    newsroom.write("a.md", md("Zeta project launches"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = by_slug(store)["zeta-project-launches"]
    assert before.beat == "world"
    cfg = newsroom.config_path.read_text()
    newsroom.config_path.write_text(cfg.replace('keywords = ["software"]', 'keywords = ["Zeta"]'))
    r = collect(newsroom.config(), store, now=NOW + timedelta(days=1))
    after = by_slug(store)["zeta-project-launches"]
    assert after.beat == "technology" and r.changed
    assert after.updated == before.updated
    # A real edit afterwards still moves it.
    newsroom.write("a.md", md("Zeta project launches", body="New text."))
    collect(newsroom.config(), store, now=NOW + timedelta(days=2))
    assert by_slug(store)["zeta-project-launches"].updated == NOW + timedelta(days=2)


def test_ambiguous_or_incomplete_date_text_is_rejected_not_guessed() -> None:
    tz = ZoneInfo("Asia/Colombo")
    # dateutil read "05/11/2026" month first (May 11) and filled what was missing from the
    # machine's clock: "Friday" became the next Friday, "9:30" today.
    for text in ("05/11/2026", "11.05.2026", "Friday", "9:30", "Nov 20"):
        with pytest.raises(DateParseError):
            to_aware(text, tz)
    assert to_aware("20/11/2026", tz) == datetime(2026, 11, 20, tzinfo=tz)
    assert to_aware("Nov 20, 2026 9:30 AM", tz) == datetime(2026, 11, 20, 9, 30, tzinfo=tz)
    assert to_aware("2026-11-20 09:30 +0530", tz) == datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def test_ambiguous_pasted_date_is_rejected_at_its_line() -> None:
    with pytest.raises(ContentError) as e:
        pasted("- Ann Lee\n- 05/11/2026", "Body.")
    assert e.value.line == 3 and "2026-11-05" in str(e.value)


def test_rss_description_shows_the_plain_summary_as_written() -> None:
    # RSS <description> is HTML to every reader (RSS Best Practices Profile, "description";
    # feedparser types it text/html and sanitizes it), while our summary is plain text:
    # "Why <blink> died" lost "<blink>" in RSS but not in Atom. It is now HTML-escaped
    # first (then XML-escaped), so both formats show the same text.
    want = "Why <blink> died: AT&amp;T & R&D, a < b"
    doc = FeedDoc(info(), (item(1, summary=want), item(2, summary="", content_html="")))
    for render, stream in ((render_rss, stream_rss),):
        data = render(doc)
        assert stream(doc) == data
        rss = feedparser.parse(data).entries
        assert rss[0].summary_detail.type == "text/html"
        assert (
            lxml_html.fragment_fromstring(rss[0].summary, create_parent="p").text_content() == want
        )
        assert rss[1].summary == "Title"
    atom = feedparser.parse(render_atom(doc)).entries
    assert atom[0].summary_detail.type == "text/plain" and atom[0].summary == want


def test_body_paragraph_starting_with_the_authors_name_is_kept() -> None:
    # With no blank line after the bullets (or the byline), any line starting with the
    # author's surname was taken for a byline and silently dropped from the body.
    for text in (
        "A\n- Dilini Perera\n- Nov 20, 2026\nPerera said the budget would pass on Friday.\nMore.",
        "A\n- Dilini Perera\n- Nov 20, 2026\nDilini Perera JadeTimes Staff\n"
        "Perera Holdings is expected to expand.\nMore.",
    ):
        p = parse_pasted(text, "x.txt", now=NOW, tz=ZoneInfo("Asia/Colombo"))
        assert p.html.startswith("<p>Perera ") and p.html.endswith("<p>More.</p>"), p.html
    # The byline and bio are still taken out of the body.
    seedlike = (
        "A\n- Dilini Perera\n- Nov 20, 2026\nDilini Perera JadeTimes Staff\n"
        "D. Perera is a Jadetimes reporter covering Sri Lanka\nPerera said so.\n"
    )
    p = parse_pasted(seedlike, "x.txt", now=NOW, tz=ZoneInfo("Asia/Colombo"))
    assert p.html == "<p>Perera said so.</p>"
    assert p.bio_beats == [("Dilini Perera", "Sri Lanka")]


def test_url_pattern_change_keeps_ids_and_updated(newsroom: Newsroom) -> None:
    # A site restructure (article_path, or http -> https) re-links every article; ids
    # stay (feed readers' first ask) and so does `updated`: nobody edited the articles.
    newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = by_slug(store)["alpha"]
    cfg = newsroom.config_path.read_text()
    newsroom.config_path.write_text(cfg.replace('"post/{slug}/"', '"news/{slug}/"'))
    r = collect(newsroom.config(), store, now=NOW + timedelta(days=1))
    after = by_slug(store)["alpha"]
    assert r.changed and after.url == "https://news.example/news/alpha/"
    assert after.id == before.id and after.updated == before.updated


def test_tag_repeating_the_beat_title_is_not_a_second_category() -> None:
    # Beat "Technology" plus tag "technology" showed as two categories in every reader
    # (5 of the sample newsroom's 22 articles).
    it = to_item(art(tags=("technology", "AI", "ai", "x")), CFG, {}, {"tech": "Technology"})
    assert it.categories == ("Technology", "AI", "x")


def test_markdown_h1_repeating_the_title_is_not_shown_twice(newsroom: Newsroom) -> None:
    # Static-site habits: front matter title *and* "# Title" atop the body. Readers then
    # showed the title twice (theirs, then the content's <h1>).
    newsroom.write("a.md", md("Alpha & Omega", body="# Alpha &amp; omega\n\nText."))
    newsroom.write("b.md", md("Beta", body="# A different heading\n\nText."))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    arts = by_slug(store)
    assert arts["alpha-omega"].content_html == "<p>Text.</p>"
    assert arts["beta"].content_html.startswith("<h1>A different heading</h1>")


def test_a_broken_edit_keeps_the_last_good_version_published(newsroom: Newsroom) -> None:
    # A typo while correcting a published article (bad YAML, a bad date) rejected the
    # file — and retracted the article from every feed until the typo was fixed.
    p = newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = by_slug(store)["alpha"]
    p.write_text("---\ntitle: Alpha: broken\ndate: 2026-11-20 09:00\n---\nBody, edited.\n")
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r.counts["rejected"] == 1 and r.counts["retracted"] == 0
    assert by_slug(store)["alpha"].status is ArticleStatus.PUBLISHED
    # Still reported on the next collect (not skipped by size and mtime), still published.
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=2))
    assert r.counts["rejected"] == 1 and r.counts["retracted"] == 0
    # Fixed: an ordinary update of the same article.
    p.write_text(md("Alpha", body="Body, edited."))
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=3))
    after = by_slug(store)["alpha"]
    assert r.counts["updated"] == 1 and after.id == before.id
    assert after.status is ArticleStatus.PUBLISHED


def test_unreadable_subfolder_retracts_nothing(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sub-folder that cannot be listed (permissions, a flaky network mount) was skipped
    # silently and the listing still counted as complete: all its articles were retracted.
    newsroom.write("desk/a.md", md("Alpha"))
    newsroom.write("b.md", md("Beta"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    real_scandir = os.scandir

    def failing_scandir(path: str) -> object:
        if os.fspath(path).endswith("desk"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing_scandir)
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r.counts["retracted"] == 0
    assert by_slug(store)["alpha"].status is ArticleStatus.PUBLISHED
    assert any("desk" in w for w in r.warnings)


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


def test_wrong_type_in_front_matter_names_the_key_and_line(newsroom: Newsroom) -> None:
    newsroom.write("a.md", md("Alpha", extra="tags: {a: b}\n"))
    newsroom.write("b.md", md("Beta", extra="summary: [x, y]\n"))
    r = collect(newsroom.config(), newsroom.store(), now=NOW)
    errors = {e.source: e for e in r.rejected}
    assert errors["a.md"].line == 4 and "'tags'" in errors["a.md"].reason
    assert errors["b.md"].line == 4 and "'summary'" in errors["b.md"].reason


def test_front_matter_language_is_a_bcp47_tag(newsroom: Newsroom) -> None:
    # "language: en_US" went verbatim into JSON Feed's item language (RFC 5646: en-US).
    newsroom.write("a.md", md("Alpha", extra="language: uk_UA\n"))
    newsroom.write("b.md", md("Beta", extra="language: Ukrainian!\n"))
    store = newsroom.store()
    r = collect(newsroom.config(), store, now=NOW)
    arts = by_slug(store)
    assert arts["alpha"].language == "uk-UA"
    assert arts["beta"].language is None
    assert any("b.md" in w and "language" in w for w in r.warnings)
