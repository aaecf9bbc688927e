"""One bad file is rejected alone, named with its reason; the rest of the newsroom publishes
and every feed parses (issue 11). Through the CLI, where an editor meets it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import main
from tests.conftest import Newsroom

GOOD = """\
---
title: Good Story
date: 2026-11-20 09:00
---

Body.
"""

# file name -> (front matter lines, what the rejection says)
REJECTED = {
    "overflow.md": ("date: 9999-12-31 23:59:59-12:00", "out of range"),
    "year-one.md": ("date: 0001-01-01 00:00", "out of range"),
    "offset.md": ('date: "2026-11-20 09:30 +99:00"', "cannot read date"),
    "feb30-anywhere.md": (
        "date: 2026-11-20 09:00\nx: 2026-02-30",
        "'2026-02-30' is not a real date",
    ),
    "month13.md": ("date: 2026-13-01", "'2026-13-01' is not a real date"),
    "ipv6-url.md": ("date: 2026-11-20 09:00\nurl: 'https://[oops/x'", "not an absolute http(s)"),
    "ipv6-image.md": ("date: 2026-11-20 09:00\nimage: 'http://[x'", "not an absolute http(s)"),
    "mailto.md": ("date: 2026-11-20 09:00\nurl: mailto:a@b", "not an absolute http(s)"),
    "dotdot-slug.md": ("date: 2026-11-20 09:00\nslug: '../../x'", "'..' segment"),
    "year-month.md": ("date: '2026-10'", "no full day, month and year"),
    "short-year.md": ("date: 20/1/6", "no four-digit year"),
    "alias-bomb.md": (
        "a: &a [l, l, l, l, l, l, l, l, l]\n"
        + "".join(
            f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "date: *i",
        "aliases",
    ),
}

# Published, with the control characters and quotes cleaned or encoded.
CLEANED = {
    "ctl-id.md": 'date: 2026-11-21 09:00\nid: "urn:x\\x01y"',
    "ctl-slug.md": 'date: 2026-11-22 09:00\nslug: "s\\x02lug"',
    "ctl-image-type.md": 'date: 2026-11-23 09:00\nimage: {url: /a.jpg, type: "image/jpeg\\x03"}',
    "quote-slug.md": "date: 2026-11-24 09:00\nslug: 'x\"'",
    "space-slug.md": "date: 2026-11-25 09:00\nslug: 'two words'",
}


def _file(title: str, front: str) -> str:
    return f"---\ntitle: {title}\n{front}\n---\n\nBody of {title}.\n"


def _run(newsroom: Newsroom, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *args])
    return r.exit_code, r.stdout, r.stderr


def _feeds_parse(feeds: Path) -> str:
    """Every feed file parses; the text of all of them."""
    text = ""
    for p in sorted(feeds.rglob("*")):
        if p.name.endswith(".xml"):
            etree.parse(str(p), etree.XMLParser(resolve_entities=False))
        elif p.name.endswith(".json"):
            json.loads(p.read_text(encoding="utf-8"))
        else:
            continue
        text += p.read_text(encoding="utf-8")
    return text


def test_each_hostile_file_is_rejected_alone_and_the_rest_publishes(newsroom: Newsroom) -> None:
    newsroom.write("good.md", GOOD)
    for name, (front, _why) in REJECTED.items():
        newsroom.write(name, _file(name, front))
    for name, front in CLEANED.items():
        newsroom.write(name, _file(name, front))
    # a.md -> b -> c -> b: a symlink loop named like content.
    os.symlink("b", newsroom.content / "a.md")
    os.symlink("c", newsroom.content / "b")
    os.symlink("b", newsroom.content / "c")

    code, _out, err = _run(newsroom, "publish")
    assert code == 1, err
    lines = err.splitlines()
    for name, (_front, why) in REJECTED.items():
        named = [ln for ln in lines if name in ln]
        assert named and why in named[0], (name, named, err)
    assert any("a.md" in ln and "symbolic links" in ln for ln in lines), err
    assert "Traceback" not in err
    text = _feeds_parse(newsroom.root / "feeds")
    assert "Good Story" in text
    for name in CLEANED:
        assert name in text, name
    assert "urn:x y" in text  # the id: its control character is a space (clean_text)
    assert "https://news.example/post/s%20lug/" in text
    assert "https://news.example/post/x%22/" in text
    assert "https://news.example/post/two%20words/" in text
    assert 'type="image/jpeg"' in text
    for name in REJECTED:
        assert f"Body of {name}" not in text


def test_the_alias_bomb_is_refused_quickly_and_quoted_briefly(newsroom: Newsroom) -> None:
    front, _ = REJECTED["alias-bomb.md"]
    newsroom.write("bomb.md", _file("Bomb", front))
    newsroom.write("good.md", GOOD)
    code, _out, err = _run(newsroom, "collect")
    assert code == 1 and "bomb.md" in err
    assert len(err) < 2000  # the message quotes nothing of the 10**9-value expansion


def test_a_file_over_the_size_limit_is_refused_before_reading(newsroom: Newsroom) -> None:
    newsroom.set_config(
        base=Path(newsroom.config_path)
        .read_text(encoding="utf-8")
        .replace('path = "content"', 'path = "content"\nmax_file_bytes = 100_000')
    )
    newsroom.write("good.md", GOOD)
    newsroom.write("big.md", GOOD.replace("Body.", "word " * 30_000))
    code, _out, err = _run(newsroom, "publish")
    assert code == 1
    assert "big.md: file is bigger than 100,000 bytes" in err
    assert "Good Story" in _feeds_parse(newsroom.root / "feeds")


@pytest.mark.parametrize(
    "title",
    ["<a " * 60_000, "<!--" * 40_000, "<<b>" * 20_000 + "b>" * 20_000],
    ids=["unclosed-tags", "unclosed-comments", "nested-tags"],
)
def test_pathological_titles_collect(newsroom: Newsroom, title: str) -> None:
    """Titles that took the old tag stripper minutes (quadratic) are read in one pass."""
    newsroom.write("t.md", f"---\ntitle: '{title}x'\ndate: 2026-11-20 09:00\n---\nBody.\n")
    code, _out, err = _run(newsroom, "collect")
    assert code == 0, err


def test_deeply_nested_html_is_flattened_not_fatal(newsroom: Newsroom) -> None:
    newsroom.write(
        "deep.html",
        "---\ntitle: Deep\ndate: 2026-11-20 09:00\n---\n"
        + "<div>" * 100_000
        + "deep text"
        + "</div>" * 100_000,
    )
    code, _out, err = _run(newsroom, "publish")
    assert code == 0, err
    assert "deep text" in _feeds_parse(newsroom.root / "feeds")


def test_killed_builds_leftover_temp_files_are_swept(newsroom: Newsroom) -> None:
    newsroom.write("good.md", GOOD)
    feeds = newsroom.root / "feeds"
    (feeds / "beats").mkdir(parents=True)
    stale = [feeds / ".rss.xml.k1l2.tmp", feeds / "beats" / ".atom.xml.x9.tmp"]
    for p in stale:
        p.write_text("half a feed", encoding="utf-8")
        old = time.time() - 3600
        os.utime(p, (old, old))
    code, _out, err = _run(newsroom, "publish")
    assert code == 0, err
    assert not any(p.exists() for p in stale)


def test_an_incremental_build_sweeps_the_output_folder_once_a_day(newsroom: Newsroom) -> None:
    from datetime import UTC, datetime, timedelta

    from feedpub.collect import collect
    from feedpub.feeds import build_feeds

    now = datetime.fromtimestamp(time.time(), UTC).replace(microsecond=0)
    store = newsroom.store()
    newsroom.write("a.md", GOOD)
    collect(newsroom.config(), store, now=now)
    build_feeds(newsroom.config(), store, now=now, ping=False)  # the first: a full sweep
    stale = newsroom.root / "feeds" / ".rss.xml.k1l2.tmp"
    stale.write_text("half a feed", encoding="utf-8")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    def publish_one(title: str, at: datetime) -> None:
        newsroom.write(f"{title}.md", GOOD.replace("Good Story", title))
        collect(newsroom.config(), store, now=at)
        report = build_feeds(newsroom.config(), store, now=at, ping=False)
        assert report.written

    publish_one("Second", now + timedelta(hours=2))
    assert stale.exists()  # an incremental build within the day does not walk the folder
    publish_one("Third", now + timedelta(hours=25))
    assert not stale.exists()  # a day after the last sweep it does
    stale.write_text("half a feed", encoding="utf-8")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    build_feeds(newsroom.config(), store, now=now + timedelta(hours=26), force=True, ping=False)
    assert not stale.exists()  # and a forced build always does


def test_an_unclean_stored_article_is_left_out_of_archive_pages_too(newsroom: Newsroom) -> None:
    """Archive pages come from the streaming writer: it refuses what feedgen refuses (a
    control character in a stored URL, author or tag), so every page stays valid XML."""
    import sqlite3

    newsroom.write("old.md", _file("Old Story", "date: 2026-11-01 09:00"))
    for i in range(11):
        story = GOOD.replace("Good Story", f"Story {i}")
        newsroom.write(f"n{i}.md", story.replace("2026-11-20", f"2026-11-{i + 2:02d}"))
    code, _out, err = _run(newsroom, "publish")
    assert code == 0, err
    assert "Old Story" in (newsroom.root / "feeds" / "archive" / "1" / "rss.xml").read_text()
    pages = sorted(
        p.relative_to(newsroom.root / "feeds")
        for p in (newsroom.root / "feeds").rglob("archive/*/rss.xml")
    )
    assert pages, "the test needs archive pages (items_per_feed = 5)"
    db = sqlite3.connect(newsroom.root / "feedpub.db")
    with db:
        (old_id,) = db.execute("SELECT id FROM articles WHERE title = 'Old Story'").fetchone()
        db.execute("UPDATE articles SET url = url || '\x01' WHERE id = ?", (old_id,))
    db.close()
    code, _out, err = _run(newsroom, "build", "--force")
    assert code == 1
    assert f"article {old_id} is left out of the feeds" in err
    text = _feeds_parse(newsroom.root / "feeds")  # archive pages included
    assert "Story 0" in text and "Old Story" not in text


def test_an_article_the_writers_refuse_is_left_out_and_named(newsroom: Newsroom) -> None:
    """An article stored before the boundary existed (a control character in its URL)
    costs itself, not the build: the others are written, it is named, exit status 1."""
    import sqlite3

    newsroom.write("good.md", GOOD)
    newsroom.write("old.md", _file("Old Story", "date: 2026-11-21 09:00"))
    code, _out, err = _run(newsroom, "publish")
    assert code == 0, err
    db = sqlite3.connect(newsroom.root / "feedpub.db")
    with db:
        (old_id,) = db.execute("SELECT id FROM articles WHERE title = 'Old Story'").fetchone()
        db.execute("UPDATE articles SET url = url || '\x01' WHERE id = ?", (old_id,))
    db.close()
    code, _out, err = _run(newsroom, "build", "--force")
    assert code == 1
    assert f"article {old_id} is left out of the feeds" in err
    text = _feeds_parse(newsroom.root / "feeds")
    assert "Good Story" in text and "Old" not in text
    code, _out, err = _run(newsroom, "build")  # not forgotten: named again until fixed
    assert code == 1 and old_id in err


def test_a_feed_over_its_byte_budget_carries_summaries_for_its_oldest_items(
    newsroom: Newsroom,
) -> None:
    newsroom.set_config(
        base=Path(newsroom.config_path)
        .read_text(encoding="utf-8")
        .replace("items_per_feed = 5", "items_per_feed = 5\nmax_feed_bytes = 30_000")
    )
    for n in range(1, 6):
        body = f"Opening of story {n}. " + " ".join(f"w{n}x{i}" for i in range(1500))
        newsroom.write(f"s{n}.md", _file(f"Story {n}", f"date: 2026-11-2{n} 09:00") + body)
    code, out, err = _run(newsroom, "publish")
    assert code == 0, err
    assert "over [output] max_feed_bytes" in out
    for name in ("rss.xml", "atom.xml", "feed.json"):
        data = (newsroom.root / "feeds" / name).read_text(encoding="utf-8")
        assert len(data.encode()) <= 30_000, name
        assert "w5x1499" in data  # the newest keeps its full text
        assert "w1x1499" not in data and "Opening of story 1" in data  # the oldest: summary
    _feeds_parse(newsroom.root / "feeds")


def test_links_with_brackets_print_no_exception_from_the_sanitizer(
    newsroom: Newsroom, capfd: pytest.CaptureFixture[str]
) -> None:
    """nh3 printed "Exception ignored" tracebacks for URLs containing "[" and kept them."""
    newsroom.write(
        "links.md",
        GOOD + '\n<a href="http://[x">v6</a> <img src="[" alt="b"> [m](http://[oops/x)\n',
    )
    code, _out, err = _run(newsroom, "publish")
    captured = capfd.readouterr()
    assert code == 0, err
    assert "Exception ignored" not in err + captured.err
    text = _feeds_parse(newsroom.root / "feeds")
    assert "http://[x" not in text and 'src="["' not in text
    assert "https://news.example/post/good-story/%5B" in text  # "[" as a path: encoded


def test_a_pasted_article_with_a_two_digit_year_is_rejected_not_guessed(
    newsroom: Newsroom,
) -> None:
    newsroom.write("good.md", GOOD)
    newsroom.write("p.txt", "A Pasted Title\n- Iruni Kalupahana\n- 20/1/6\n\nBody text here.\n")
    code, _out, err = _run(newsroom, "publish")
    assert code == 1
    assert "p.txt" in err and "Traceback" not in err


def test_the_boundary_screens_articles_of_every_source() -> None:
    """What a feed or pages source hands to collect passes the same boundary: a bad one
    moves to the rejected list with its key; control characters are cleaned."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta, timezone

    from feedpub.sources.base import SourceResult
    from feedpub.sources.boundary import screen_result
    from feedpub.types import Image, ParsedArticle

    good = ParsedArticle(
        source="feed:x",
        key="entry-1",
        title="T<b>i</b>tle\x01",
        url="https://up.example/a b",
        slug="s\x02lug",
        authors=("A\x03", ""),
        published=datetime(2026, 11, 20, tzinfo=UTC),
        updated=None,
        content_html="<p>ok\x0b</p>",
        summary="sum\nmary",
        reading_minutes=1,
        image=Image(url="/i.jpg", type="image/jpeg\x03"),
        explicit_id="urn:x\x01y",
    )
    bad_url = replace(good, key="entry-2", url="mailto:a@b")
    bad_date = replace(
        good,
        key="entry-3",
        published=datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))),
    )
    bad_type = replace(good, key="entry-4", image=Image(url="/i.jpg", type="not a type"))
    result = SourceResult(name="feed:x", articles=[good, bad_url, bad_date, bad_type])
    screen_result(result, "https://news.example/")
    assert [a.key for a in result.articles] == ["entry-1"]
    assert {e.source for e in result.rejected} == {"entry-2", "entry-3", "entry-4"}
    a = result.articles[0]
    assert (a.title, a.slug, a.authors, a.explicit_id) == ("Title", "s lug", ("A",), "urn:x y")
    assert a.url == "https://up.example/a%20b" and a.summary == "sum mary"
    assert a.content_html == "<p>ok </p>"
    assert a.image == Image(url="https://up.example/i.jpg", type="image/jpeg")


def test_the_nesting_cap_leaves_real_articles_alone() -> None:
    """Unclosed <p> and <li> never nest (the parser closes them): 150 of them stay 150
    paragraphs; only real nesting past 100 levels is flattened, its text kept."""
    from feedpub.text import MAX_NESTING, sanitize_html

    assert sanitize_html("<p>a" * 150, "https://a.example/").count("<p>") == 150
    deep = sanitize_html("<blockquote>" * 150 + "core" + "</blockquote>" * 150, "https://a/")
    assert deep.count("<blockquote>") == MAX_NESTING and "core" in deep
    shallow = "<blockquote>" * 50 + "core" + "</blockquote>" * 50
    assert sanitize_html(shallow, "https://a/") == shallow


def test_markdown_with_thousands_of_unclosed_brackets_renders_them_as_text() -> None:
    """markdown-it-py looks for a label's end from every unclosed "[" ("![" * 200,000
    took 25 s): such brackets are escaped first; links and ordinary brackets are kept."""
    from feedpub.sources.markdown import defuse_brackets, render

    prose = "see [a link](https://x.example/) and [b]\n\n"
    assert defuse_brackets(prose * 300) == prose * 300  # closed brackets: untouched
    bomb = "![" * 5000
    html = render("[ok](https://x.example/)\n\n" + bomb)
    assert '<a href="https://x.example/">ok</a>' in html
    assert html.count("![") == 5000  # shown as the text it is
    assert defuse_brackets("a " + "[" * 50) == "a " + "[" * 50  # a few: left to markdown-it
