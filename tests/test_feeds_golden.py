"""Golden files and structure of the feeds built from a small fixed corpus.

Corpus: tests/data/golden/feeds/corpus (config.toml + content/), collected and built at a
fixed ``now``. Regenerate the expected files with ``python tests/regenerate_golden.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import jsonschema
import pytest
from lxml import etree, html

from tests.regenerate_golden import FEEDS_CORPUS, FEEDS_EXPECTED, FEEDS_NOW, build_feeds_corpus

BASE = "https://gazette.example/"
ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
SCHEMA = json.loads((Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json").read_text())
FEED_DIRS = [
    "",
    "beats/russia-ukraine-war/",
    "beats/technology/",
    "beats/world/",
    "authors/arjun-mehta/",
    "authors/dilini-perera/",
    "authors/iruni-kalupahana/",
    "authors/nadia-haddad/",
    "authors/oksana-melnyk/",
]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_feeds_corpus(tmp_path_factory.mktemp("golden"))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _all_text(out: Path) -> str:
    return "\n".join(b.decode() for b in _files(out).values())


def test_output_matches_golden_files(out: Path) -> None:
    got, want = _files(out), _files(FEEDS_EXPECTED)
    assert sorted(got) == sorted(want), "file set differs: run tests/regenerate_golden.py"
    for name in want:
        assert got[name] == want[name], f"{name} differs: review, then tests/regenerate_golden.py"


@pytest.mark.parametrize("writer", ["feedgen", "stream"])
def test_either_writer_everywhere_gives_the_same_bytes(
    out: Path, writer: str, tmp_path: Path
) -> None:
    """[output] writer = "feedgen" | "stream" (default "auto" mixes them): same files."""
    other = build_feeds_corpus(tmp_path, f'writer = "{writer}"\n')
    assert _files(other) == _files(out)


def test_every_feed_exists_in_every_format(out: Path) -> None:
    for d in FEED_DIRS:
        for name in ("rss.xml", "atom.xml", "feed.json"):
            assert (out / d / name).is_file(), d + name


def test_rss_channel_and_items(out: Path) -> None:
    root = etree.parse(str(out / "rss.xml")).getroot()
    ch = root.find("channel")
    assert ch is not None
    assert ch.findtext("link") == BASE  # the site page, not the feed (feedgen #122)
    selfs = [ln.get("href") for ln in ch.findall(f"{ATOM}link") if ln.get("rel") == "self"]
    assert selfs == [BASE + "rss.xml"]
    hubs = [ln.get("href") for ln in ch.findall(f"{ATOM}link") if ln.get("rel") == "hub"]
    assert hubs == ["https://hub.gazette.example/"]
    assert ch.findtext("language") == "en"
    items = ch.findall("item")
    pub = [parsedate_to_datetime(i.findtext("pubDate") or "") for i in items]
    assert pub == sorted(pub, reverse=True)
    assert all(p.utcoffset() is not None for p in pub)
    # lastBuildDate is the newest item change, never the build time.
    last = parsedate_to_datetime(ch.findtext("lastBuildDate") or "")
    assert last != FEEDS_NOW and last == datetime(2026, 11, 21, 7, 30, tzinfo=last.tzinfo)
    for it in items:
        guid = it.find("guid")
        assert guid is not None and guid.get("isPermaLink") == "false"
        assert (guid.text or "").startswith("tag:gazette.example,")
        assert it.find("{http://purl.org/rss/1.0/modules/content/}encoded") is not None
        assert it.findtext("link", "").startswith(BASE + "post/")


def test_rss_authors_with_and_without_email(out: Path) -> None:
    ch = etree.parse(str(out / "beats/world/rss.xml")).getroot().find("channel")
    assert ch is not None
    jordan = next(i for i in ch.findall("item") if "الأردن" in (i.findtext("title") or ""))
    # One author has no email: all go to dc:creator (never dropped, never mixed with <author>).
    assert jordan.findall("author") == []
    creators = [c.text for c in jordan.findall("{http://purl.org/dc/elements/1.1/}creator")]
    assert creators == ["Arjun Mehta", "Nadia Haddad"]
    tech = etree.parse(str(out / "beats/technology/rss.xml")).getroot().find("channel/item")
    assert tech is not None
    assert [a.text for a in tech.findall("author")] == ["arjun@gazette.example (Arjun Mehta)"]


def test_categories_are_beat_and_tags(out: Path) -> None:
    d = feedparser.parse((out / "beats/technology/atom.xml").read_bytes())
    e = d.entries[0]
    assert [t.term for t in e.tags] == ["Technology", "tech", "ai"]


def test_atom_enclosure_keeps_rel_type_length(out: Path) -> None:
    """feedgen 1.0.0 drops rel/type/length from Atom entry links (its issue #135)."""
    root = etree.parse(str(out / "beats/russia-ukraine-war/atom.xml")).getroot()
    entry = next(
        e for e in root.findall(f"{ATOM}entry") if "Kyiv" in (e.findtext(f"{ATOM}title") or "")
    )
    links = entry.findall(f"{ATOM}link")
    alternates = [ln for ln in links if ln.get("rel") in (None, "alternate")]
    enclosures = [ln for ln in links if ln.get("rel") == "enclosure"]
    assert len(alternates) == 1
    assert len(enclosures) == 1
    assert enclosures[0].get("type") == "image/jpeg"
    assert enclosures[0].get("href") == BASE + "media/kyiv-school.jpg"
    assert enclosures[0].get("length") is None  # unknown: omitted, never "None"
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"


def test_rss_enclosure_length_never_none(out: Path) -> None:
    text = _all_text(out)
    assert 'length="None"' not in text
    assert 'type="CDATA"' not in text
    ch = etree.parse(str(out / "rss.xml")).getroot().find("channel")
    assert ch is not None


def test_atom_feed_fields(out: Path) -> None:
    d = feedparser.parse((out / "atom.xml").read_bytes())
    assert not d.bozo
    assert d.feed.id == BASE + "atom.xml"
    assert d.feed.link == BASE
    assert {ln.rel: ln.href for ln in d.feed.links}["self"] == BASE + "atom.xml"
    assert d.feed.generator == "feedpub"
    newest = max(datetime.fromisoformat(e.updated) for e in d.entries)
    assert datetime.fromisoformat(d.feed.updated) == newest
    for e in d.entries:
        assert e.id.startswith("tag:gazette.example,")
        assert e.author_detail.name
        assert datetime.fromisoformat(e.published).utcoffset() is not None


def test_ids_agree_across_formats(out: Path) -> None:
    for d in FEED_DIRS:
        rss = [e.id for e in feedparser.parse((out / d / "rss.xml").read_bytes()).entries]
        atom = [e.id for e in feedparser.parse((out / d / "atom.xml").read_bytes()).entries]
        js = [i["id"] for i in json.loads((out / d / "feed.json").read_bytes())["items"]]
        assert rss == atom == js, d


def test_json_feeds_validate_against_schema(out: Path) -> None:
    checker = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    paths = sorted(out.rglob("feed.json"))
    assert len(paths) >= len(FEED_DIRS)
    for p in paths:
        doc = json.loads(p.read_bytes())
        errors = [e.message for e in checker.iter_errors(doc)]
        assert errors == [], p
        assert doc["feed_url"] == BASE + p.relative_to(out).as_posix()


def test_titles_escaped_exactly_once(out: Path) -> None:
    titles = {e.title for e in feedparser.parse((out / "atom.xml").read_bytes()).entries}
    titles |= {e.title for e in feedparser.parse((out / "rss.xml").read_bytes()).entries}
    assert 'AI fact-checkers in Accra: "trust, but verify"' in titles
    assert "الأردن: مشروع تحلية المياه 💧 يبدأ" in titles
    beat = feedparser.parse((out / "beats/russia-ukraine-war/rss.xml").read_bytes())
    got = {e.title for e in beat.entries}
    assert "Зерновий коридор: Одеса працює, втрати <5%" in got
    assert 'Kyiv\'s underground schools & the "new normal"' in got
    js = json.loads((out / "beats/russia-ukraine-war/feed.json").read_bytes())
    assert 'Kyiv\'s underground schools & the "new normal"' in {i["title"] for i in js["items"]}
    assert (
        "&amp;amp;"
        not in (out / "beats/russia-ukraine-war/rss.xml")
        .read_text()
        .split("<item>")[1]
        .split("</title>")[0]
    )


def test_hostile_html_removed_and_urls_absolute(out: Path) -> None:
    text = _all_text(out)
    for bad in ("<script", "&lt;script", "onclick", "javascript:", "steal()"):
        assert bad not in text, bad
    js = json.loads((out / "beats/russia-ukraine-war/feed.json").read_bytes())
    kyiv = next(i for i in js["items"] if "Kyiv" in i["title"])
    frag = html.fragment_fromstring(kyiv["content_html"], create_parent="div")
    urls = [el.get("src") or el.get("href") for el in frag.iter("img", "a")]
    assert urls == [BASE + "media/classroom.jpg", BASE + "post/background/"]


def test_drafts_and_future_articles_absent(out: Path) -> None:
    text = _all_text(out)
    assert "A draft that must never appear" not in text
    assert "Scheduled story from the future" not in text


def test_rfc5005_archives_reconstruct_the_whole_feed(out: Path) -> None:
    """RFC 5005 §4: current + every archive page (following prev-archive) = all entries."""
    seen: list[str] = []
    url = BASE + "atom.xml"
    pages = 0
    while url:
        path = out / url.removeprefix(BASE)
        root = etree.parse(str(path)).getroot()
        links = {ln.get("rel"): ln.get("href") for ln in root.findall(f"{ATOM}link")}
        if pages:
            assert root.find(f"{FH}archive") is not None
            assert links["current"] == BASE + "atom.xml"
            assert links["self"] == url
        seen += [e.findtext(f"{ATOM}id") or "" for e in root.findall(f"{ATOM}entry")]
        url = links.get("prev-archive") or ""
        pages += 1
    assert pages == 4  # current + 3 pages of 2 (six stored articles: five visible + scheduled)
    rss_ids = {e.id for e in feedparser.parse((out / "rss.xml").read_bytes()).entries}
    assert len(set(seen)) == 5 and rss_ids <= set(seen)
    first = etree.parse(str(out / "archive/1/atom.xml")).getroot()
    rels = {ln.get("rel"): ln.get("href") for ln in first.findall(f"{ATOM}link")}
    assert rels["next-archive"] == BASE + "archive/2/atom.xml" and "prev-archive" not in rels


def test_json_archives_chain_with_next_url(out: Path) -> None:
    ids: set[str] = set()
    url: str | None = BASE + "feed.json"
    n = 0
    while url:
        doc = json.loads((out / url.removeprefix(BASE)).read_bytes())
        ids |= {i["id"] for i in doc["items"]}
        url = doc.get("next_url")
        n += 1
    assert n == 4 and len(ids) == 5


def test_opml_lists_every_feed(out: Path) -> None:
    root = etree.parse(str(out / "feeds.opml")).getroot()
    assert root.get("version") == "2.0"
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert urls == [BASE + d + "rss.xml" for d in FEED_DIRS]


def test_index_html_autodiscovery(out: Path) -> None:
    doc = html.parse(str(out / "index.html")).getroot()
    alts = doc.xpath("//head/link[@rel='alternate']")
    hrefs = {(a.get("type"), a.get("href")) for a in alts}
    # The site's own feeds only (issue 14 item 11); each beat/author page has its own.
    assert hrefs == {
        ("application/rss+xml", BASE + "rss.xml"),
        ("application/atom+xml", BASE + "atom.xml"),
        ("application/feed+json", BASE + "feed.json"),
    }
    for d in FEED_DIRS:
        if not d:
            continue
        page = html.parse(str(out / d / "index.html")).getroot()
        own = {(a.get("type"), a.get("href")) for a in page.xpath("//head/link[@rel='alternate']")}
        assert own == {
            ("application/rss+xml", BASE + d + "rss.xml"),
            ("application/atom+xml", BASE + d + "atom.xml"),
            ("application/feed+json", BASE + d + "feed.json"),
        }
    body_links = {a.get("href") for a in doc.xpath("//body//a")}
    assert BASE + "beats/technology/atom.xml" in body_links
    assert "xml-stylesheet" not in (out / "rss.xml").read_text()
    assert "Оксана Мельник" in doc.text_content()


def test_corpus_is_committed() -> None:
    assert (FEEDS_CORPUS / "config.toml").is_file()
    assert FEEDS_NOW.tzinfo is UTC
