"""The content folder source: parsing rules for .md, .html and the pasted .txt layout."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from feedpub.collect import collect
from feedpub.store import Store
from feedpub.types import Article

from .conftest import SEED, Newsroom

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
