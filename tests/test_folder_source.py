"""The content folder source: parsing rules for .md, .html and the pasted .txt layout,
the dates they state (never guessed when ambiguous), and front matter values of the
wrong type or form."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import html as lxml_html

from feedpub.collect import collect
from feedpub.errors import ContentError
from feedpub.sources.dates import DateParseError, to_aware
from feedpub.sources.pasted import Pasted, parse_pasted
from feedpub.store import Store
from feedpub.types import Article

from .conftest import SEED, Newsroom
from .test_collect import md

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def articles(store: Store) -> dict[str, Article]:
    with store.read() as conn:
        return {a.slug: a for a in store.load_articles(conn)}


def run(newsroom: Newsroom, now: datetime = NOW) -> tuple[Store, dict[str, Article]]:
    store = newsroom.store()
    report = collect(newsroom.config(), store, now=now)
    assert not report.rejected, report.rejected
    return store, articles(store)


def test_seed_article(newsroom: Newsroom) -> None:
    (newsroom.content / SEED.name).write_bytes(SEED.read_bytes())
    _, arts = run(newsroom)
    (a,) = arts.values()
    assert a.title == "Ukraine’s Security and Peace Agreement"
    assert a.authors == ("Iruni Kalupahana",)
    assert a.beat == "russia-ukraine-war"
    assert a.reading_minutes == 2
    doc = lxml_html.fragment_fromstring(a.content_html, create_parent="div")
    assert [h.text for h in doc.findall("h2")] == [
        "Ukraine’s Pre-2014 Borders",
        "Challenges in Ensuring Ukraine’s Security",
        "Russia as the Sole Security Guarantor",
    ]
    assert len(doc.findall("p")) == 3
    assert "Comments" not in a.content_html
    assert a.url == "https://news.example/post/ukraines-security-and-peace-agreement/"
    # "Feb 15" without a year: the latest Feb 15 not after collection, midnight site time.
    assert a.published == datetime(2026, 2, 14, 18, 30, tzinfo=UTC)
    assert a.id == "tag:news.example,2026-02-15:/post/ukraines-security-and-peace-agreement/"
    assert a.summary.startswith("The idea of returning Ukraine")


def test_seed_beat_comes_from_bio_line_alone(newsroom: Newsroom) -> None:
    # No config link between this author and the beat: only the bio line "covering ...".
    newsroom.set_config(
        base=newsroom.config_path.read_text().replace('authors = ["Iruni Kalupahana"]', "")
    )
    (newsroom.content / SEED.name).write_bytes(SEED.read_bytes())
    store, arts = run(newsroom)
    assert next(iter(arts.values())).beat == "russia-ukraine-war"
    # The author is now tied to the beat: a later Markdown article by them lands there too.
    newsroom.write(
        "later.md", "---\ntitle: Later\nauthor: Iruni Kalupahana\ndate: 2026-11-20\n---\nText.\n"
    )
    collect(newsroom.config(), store, now=NOW)
    assert articles(store)["later"].beat == "russia-ukraine-war"


def test_year_guess_is_kept_on_recollect_next_year(newsroom: Newsroom) -> None:
    (newsroom.content / SEED.name).write_bytes(SEED.read_bytes())
    store, arts = run(newsroom)
    first = next(iter(arts.values()))
    # A config change forces a re-parse a year later; the stored year must not move.
    newsroom.set_config('[[authors]]\nname = "Someone"\n', base=newsroom.config_path.read_text())
    report = collect(newsroom.config(), store, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert report.counts["unchanged"] == 1
    assert next(iter(articles(store).values())).published == first.published


def test_pasted_front_matter_wins(newsroom: Newsroom) -> None:
    text = SEED.read_text(encoding="utf-8")
    newsroom.write(
        "seed.txt",
        "---\ntitle: Edited title\ndate: 2025-02-15 10:00\nbeat: technology\n---\n" + text,
    )
    _, arts = run(newsroom)
    a = arts["edited-title"]
    assert a.beat == "technology"
    assert a.published == datetime(2025, 2, 15, 4, 30, tzinfo=UTC)


def pasted(bullets: str, body: str) -> Pasted:
    return parse_pasted(
        f"A Title\n{bullets}\n\n{body}", "x.txt", now=NOW, tz=ZoneInfo("Asia/Colombo")
    )


def test_comment_count_residue_is_dropped() -> None:
    for residue in ("Comments (3)", "Comments(12)", "3 Comments", "Comments: 3", "Comments"):
        p = pasted("- Ann Lee\n- Nov 20, 2026", f"The article body.\n{residue}")
        assert p.html == "<p>The article body.</p>", residue


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


def test_markdown_article_fields(newsroom: Newsroom) -> None:
    newsroom.write(
        "a.md",
        """\
        ---
        title: "Q&A: <b>Budget</b> \u0007day"
        author: [Ann Writer, Bob Reporter]
        date: 2026-11-20 09:30
        tags: [tech, economy]
        image: /media/budget.jpg
        ---
        # Not the title

        Intro with a [relative link](../other/) and <span onclick="evil()">span</span>.

        <script>alert(1)</script><iframe src="https://x.example"></iframe>
        <a href="javascript:alert(1)">bad</a> ![pic](img/p.png)

        ## Section
        """,
    )
    _, arts = run(newsroom)
    a = arts["q-a-budget-day"]
    assert a.title == "Q&A: Budget day"
    assert a.authors == ("Ann Writer", "Bob Reporter")
    assert a.author_slugs == ("ann-writer", "bob-reporter")
    assert a.published == datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # Asia/Colombo +05:30
    assert a.updated == a.published
    assert a.beat == "technology"  # via tag "tech"
    assert a.tags == ("tech", "economy")
    assert a.image is not None
    assert a.image.url == "https://news.example/media/budget.jpg"
    assert a.image.type == "image/jpeg"
    h = a.content_html
    assert "<h1>Not the title</h1>" in h
    assert 'href="https://news.example/post/other/"' in h
    assert 'src="https://news.example/post/q-a-budget-day/img/p.png"' in h
    for bad in ("<script", "onclick", "<iframe", "javascript:", "alert("):
        assert bad not in h
    assert a.summary.startswith("Intro with a relative link and span.")
    assert a.reading_minutes == 1


def test_markdown_h1_repeating_the_title_is_not_shown_twice(newsroom: Newsroom) -> None:
    # Static-site habits: front matter title *and* "# Title" atop the body. Readers then
    # showed the title twice (theirs, then the content's <h1>).
    newsroom.write("a.md", md("Alpha & Omega", body="# Alpha &amp; omega\n\nText."))
    newsroom.write("b.md", md("Beta", body="# A different heading\n\nText."))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    arts = articles(store)
    assert arts["alpha-omega"].content_html == "<p>Text.</p>"
    assert arts["beta"].content_html.startswith("<h1>A different heading</h1>")


def test_html_article_and_explicit_url_and_id(newsroom: Newsroom) -> None:
    newsroom.write(
        "b.html",
        """\
        ---
        title: Kremlin talks
        author: Iruni Kalupahana
        date: 2026-11-21T08:00:00+00:00
        url: https://news.example/special/kremlin-talks
        id: urn:uuid:2f1c6a8e-5a4b-4c7e-9f0a-1b2c3d4e5f60
        summary: A short summary.
        ---
        <p>Body <img src="pic.jpg" onerror="x()"></p>
        """,
    )
    _, arts = run(newsroom)
    a = arts["kremlin-talks"]
    assert a.id == "urn:uuid:2f1c6a8e-5a4b-4c7e-9f0a-1b2c3d4e5f60"
    assert a.url == "https://news.example/special/kremlin-talks"
    assert a.content_html == '<p>Body <img src="https://news.example/special/pic.jpg"></p>'
    assert a.summary == "A short summary."
    assert a.beat == "russia-ukraine-war"  # the author's beat from config


@pytest.mark.parametrize(
    ("front", "beat"),
    [
        ("beat: technology\nauthor: Iruni Kalupahana\n", "technology"),  # front matter first
        ("author: Iruni Kalupahana\ntags: [tech]\n", "russia-ukraine-war"),  # then author
        ("tags: [Tech]\n", "technology"),  # then tags (case-insensitive)
        ("title: The Kremlin said\n", "russia-ukraine-war"),  # then keywords in the title
        ("summary: New software ships\n", "technology"),  # ...or the summary
        ("", "world"),  # then the default beat
    ],
)
def test_beat_precedence(newsroom: Newsroom, front: str, beat: str) -> None:
    title = "" if "title:" in front else "title: Plain\n"
    newsroom.write("x.md", f"---\n{title}date: 2026-11-20\n{front}---\nBody text.\n")
    _, arts = run(newsroom)
    (a,) = arts.values()
    assert a.beat == beat


def test_undefined_beat_rejects_only_that_file(newsroom: Newsroom) -> None:
    newsroom.write("bad.md", "---\ntitle: Bad\ndate: 2026-11-20\nbeat: sport\n---\nx\n")
    newsroom.write("good.md", "---\ntitle: Good\ndate: 2026-11-20\n---\nx\n")
    store = newsroom.store()
    report = collect(newsroom.config(), store, now=NOW)
    (err,) = report.rejected
    assert err.source == "bad.md"
    assert "beat 'sport' is not defined" in str(err)
    assert list(articles(store)) == ["good"]


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
    arts = articles(store)
    assert arts["alpha"].language == "uk-UA"
    assert arts["beta"].language is None
    assert any("b.md" in w and "language" in w for w in r.warnings)


def test_draft_and_hidden_files_are_not_published(newsroom: Newsroom) -> None:
    newsroom.write("d.md", "---\ntitle: Draft\ndate: 2026-11-20\ndraft: true\n---\nx\n")
    newsroom.write(".hidden.md", "---\ntitle: Hidden\ndate: 2026-11-20\n---\nx\n")
    newsroom.write("_drafts/wip.md", "---\ntitle: WIP\ndate: 2026-11-20\n---\nx\n")
    _, arts = run(newsroom)
    assert arts == {}


def _touch_same_size(path: Path, new_text: str) -> None:
    st = path.stat()
    assert len(new_text.encode()) == st.st_size
    path.write_text(new_text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_recollect_skips_files_by_size_and_mtime(newsroom: Newsroom) -> None:
    p = newsroom.write("a.md", "---\ntitle: AAAA\ndate: 2026-11-20\n---\nx\n")
    store, first = run(newsroom)
    # Same size and mtime, different bytes: not even read, so still the old title.
    _touch_same_size(p, p.read_text().replace("AAAA", "BBBB"))
    report = collect(newsroom.config(), store, now=NOW)
    assert report.counts["unchanged"] == 1
    assert list(articles(store)) == ["aaaa"]
    # A new mtime makes it read again.
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 1_000_000_000))
    report = collect(newsroom.config(), store, now=NOW)
    assert report.counts["updated"] == 1
    # The slug (and so the URL) follows the new title, but the permanent id does not move.
    after = articles(store)
    assert list(after) == ["bbbb"]
    assert after["bbbb"].id == first["aaaa"].id
    assert after["bbbb"].url == "https://news.example/post/bbbb/"


def test_emoji_only_titles_take_their_slug_from_the_file_name(newsroom: Newsroom) -> None:
    newsroom.write("storm-watch.md", "---\ntitle: 🌀🌧️\ndate: 2026-11-20\n---\nRain.\n")
    newsroom.write("quake.md", "---\ntitle: 🌋\ndate: 2026-11-20\n---\nShake.\n")
    _, arts = run(newsroom)
    assert sorted(arts) == ["quake", "storm-watch"]
    assert arts["quake"].title == "🌋"


def test_a_bio_in_config_wins_over_one_seen_in_an_article(newsroom: Newsroom) -> None:
    newsroom.set_config(
        '[[authors]]\nname = "Iruni Kalupahana"\nbio = "Our Kyiv correspondent."\n',
        base=newsroom.config_path.read_text(),
    )
    (newsroom.content / SEED.name).write_bytes(SEED.read_bytes())  # has its own bio line
    store, _ = run(newsroom)
    import sqlalchemy as sa

    from feedpub import schema

    with store.read() as conn:
        bio = conn.execute(
            sa.select(schema.authors.c.bio).where(schema.authors.c.slug == "iruni-kalupahana")
        ).scalar_one()
    assert bio == "Our Kyiv correspondent."
