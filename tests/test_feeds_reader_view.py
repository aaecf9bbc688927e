"""What feed readers and people following a feed's links see (issue 14): each item's
language (items 1), beat and author pages that exist (2), Media RSS lead images (3), author
feeds by their author (9), and autodiscovery kept to each page's own feeds (11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from feedpub.collect import collect
from feedpub.feeds import build_feeds
from feedpub.store import Store
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ARABIC = """\
---
title: الأردن يسابق الجفاف بمشروع تحلية مياه العقبة
author: Nadia Haddad
date: 2026-11-11T13:00:00+03:00
summary: يدخل مشروع الناقل الوطني لتحلية المياه في الأردن مرحلة البناء، وسط تحذيرات من تراجع مخزون السدود.
---

أعلنت وزارة المياه والري الأردنية هذا الأسبوع بدء أعمال البناء الرئيسية في مشروع الناقل الوطني للمياه، الذي يهدف إلى تحلية مياه البحر الأحمر في العقبة ونقلها إلى عمّان.
"""
UKRAINIAN = """\
---
title: Черги донорів у Львові — рекорд осені
author: Оксана Мельник
date: 2026-11-24 10:00
tags: [ukraine]
---

Львівський центр служби крові за тиждень прийняв понад тисячу донорів, і черги біля пунктів збору не зменшуються навіть у вихідні дні.
"""
ENGLISH = """\
---
title: New software release for newsrooms
author: Arjun Mehta
date: 2026-11-20 09:30
beat: technology
image:
  url: /media/release.jpg
  alt: Screenshot of the release notes
  width: 1200
  height: 630
  length: 5120
---

The new software release ships today with faster builds and better feeds for everyone.
"""
STATED = """\
---
title: A story the front matter says is British English
author: Arjun Mehta
date: 2026-11-21 09:30
language: en-GB
beat: technology
---

Colour and flavour, as the newsroom's style guide spells them.
"""

AUTHORS = """
[[authors]]
name = "Arjun Mehta"
email = "arjun@news.example"
bio = "Arjun Mehta writes about software."
"""


def _publish(newsroom: Newsroom, extra: str = AUTHORS) -> Path:
    newsroom.write("ar.md", ARABIC)
    newsroom.write("uk.md", UKRAINIAN)
    newsroom.write("en.md", ENGLISH)
    newsroom.write("gb.md", STATED)
    newsroom.set_config(extra)
    config = newsroom.config()
    store = Store(config.store_url)
    try:
        report = collect(config, store, now=NOW)
        assert not report.rejected if hasattr(report, "rejected") else True
        build_feeds(config, store, now=NOW, ping=False)
    finally:
        store.close()
    return config.output_dir


def _by_title(root: etree._Element, path: str, title_path: str) -> dict[str, etree._Element]:
    return {str(e.findtext(title_path)): e for e in root.iterfind(path)}


# ---- item 1: each item's language ----------------------------------------------------------


def test_each_item_carries_its_language_in_every_format(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    atom = etree.parse(str(out / "atom.xml")).getroot()
    assert atom.get(XML_LANG) == "en"
    langs = {e.findtext(f"{ATOM}title"): e.get(XML_LANG) for e in atom.iter(f"{ATOM}entry")}
    assert langs == {
        ARABIC.split("title: ")[1].split("\n")[0]: "ar",
        "Черги донорів у Львові — рекорд осені": "uk",
        "New software release for newsrooms": "en",
        "A story the front matter says is British English": "en-GB",  # stated wins
    }
    rss = etree.parse(str(out / "rss.xml")).getroot()
    assert rss.findtext("channel/language") == "en"
    dc = {i.findtext("title"): i.findtext(f"{DC}language") for i in rss.iter("item")}
    # dc:language only where the item's language differs from the channel's.
    assert sorted(v for v in dc.values() if v) == ["ar", "en-GB", "uk"]
    assert dc["New software release for newsrooms"] is None
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert sorted(i["language"] for i in feed["items"]) == ["ar", "en", "en-GB", "uk"]


# ---- item 2: beat and author pages ---------------------------------------------------------


def test_every_html_link_of_a_feed_points_at_a_page_that_exists(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    base = "https://news.example/"

    def exists(url: str) -> bool:
        assert url.startswith(base), url
        rel = url[len(base) :]
        return (out / rel / "index.html").is_file() if rel.endswith("/") or not rel else False

    links: set[str] = set()
    for folder in ["beats/technology/", "beats/world/", "authors/arjun-mehta/"]:
        rss = etree.parse(str(out / folder / "rss.xml")).getroot()
        links.add(str(rss.findtext("channel/link")))
        atom = etree.parse(str(out / folder / "atom.xml")).getroot()
        links |= {
            str(ln.get("href"))
            for ln in atom.findall(f"{ATOM}link")
            if ln.get("rel") == "alternate"
        }
        links.add(json.loads((out / folder / "feed.json").read_text())["home_page_url"])
    opml = etree.parse(str(out / "feeds.opml")).getroot()
    links |= {str(o.get("htmlUrl")) for o in opml.iter("outline") if o.get("htmlUrl")}
    index = lxml_html.parse(str(out / "index.html")).getroot()
    links |= {str(a.get("href")) for a in index.xpath("//li/strong/a")}
    links.discard(base)  # the site's own home page, not ours to write
    # The sign-up page is an endpoint of `feedpub serve`, not a file (tests/test_signup_web.py)
    assert {u for u in links if "/subscribe/" in u} == {"https://news.example/subscribe/daily"}
    links.discard("https://news.example/subscribe/daily")
    assert {
        "https://news.example/beats/technology/",
        "https://news.example/authors/arjun-mehta/",
    } <= links
    assert sorted(u for u in links if not exists(u)) == []


def test_an_author_page_lists_the_latest_items_feeds_and_bio(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    page = lxml_html.parse(str(out / "authors/arjun-mehta/index.html")).getroot()
    assert page.findtext(".//h1") == "Arjun Mehta"
    assert "Arjun Mehta writes about software." in page.text_content()
    items = page.xpath("//ul[@class='items']/li")
    assert [li.xpath("string(.//a)") for li in items] == [
        "A story the front matter says is British English",
        "New software release for newsrooms",
    ]
    assert items[0].get("lang") == "en-GB" and items[0].get("dir") == "ltr"
    hrefs = [a.get("href") for a in page.xpath("//ul[@class='items']//a")]
    assert all(h.startswith("https://news.example/post/") for h in hrefs)
    # Autodiscovery: this author's own three feeds, nothing else.
    alt = [(ln.get("type"), ln.get("href")) for ln in page.xpath("//head/link[@rel='alternate']")]
    assert alt == [
        ("application/rss+xml", "https://news.example/authors/arjun-mehta/rss.xml"),
        ("application/atom+xml", "https://news.example/authors/arjun-mehta/atom.xml"),
        ("application/feed+json", "https://news.example/authors/arjun-mehta/feed.json"),
    ]
    # Sign-up is on by default: the author page links to the newsletter's sign-up page.
    signup = page.xpath("//p[@class='signup']//a")
    assert [a.get("href") for a in signup] == ["https://news.example/subscribe/daily"]
    # An RTL story on a beat page is marked so.
    world = lxml_html.parse(str(out / "beats/world/index.html")).getroot()
    (ar,) = world.xpath("//ul[@class='items']/li[@lang='ar']")
    assert ar.get("dir") == "rtl"


def test_pages_are_rewritten_only_when_their_feed_changes(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    page = out / "beats/world/index.html"
    tech = out / "beats/technology/index.html"
    before = (page.stat().st_mtime_ns, tech.stat().st_mtime_ns)
    config = newsroom.config()
    store = Store(config.store_url)
    try:
        forced = build_feeds(config, store, now=NOW, force=True, ping=False)
        assert forced.written == []
        assert (page.stat().st_mtime_ns, tech.stat().st_mtime_ns) == before
        newsroom.write("en2.md", ENGLISH.replace("New software", "Second software"))
        collect(config, store, now=NOW)
        report = build_feeds(config, store, now=NOW, ping=False)
    finally:
        store.close()
    assert "beats/technology/index.html" in report.written
    assert "beats/world/index.html" not in report.written
    assert page.stat().st_mtime_ns == before[0]
    assert "Second software" in tech.read_text(encoding="utf-8")


def test_url_on_beats_and_authors_points_every_link_at_the_cms(newsroom: Newsroom) -> None:
    extra = AUTHORS + 'url = "https://cms.example/people/arjun/"\n'
    out = _publish(newsroom, extra)
    assert (out / "beats/technology/index.html").is_file()
    assert not (out / "authors/arjun-mehta/index.html").exists()
    atom = etree.parse(str(out / "authors/arjun-mehta/atom.xml")).getroot()
    alt = [ln.get("href") for ln in atom.findall(f"{ATOM}link") if ln.get("rel") == "alternate"]
    assert alt == ["https://cms.example/people/arjun/"]
    # Now the beat too, after a first build wrote its page: the page is removed.
    text = newsroom.config_path.read_text(encoding="utf-8")
    text = text.replace(
        'slug = "technology"\ntitle = "Technology"\n',
        'slug = "technology"\ntitle = "Technology"\nurl = "https://cms.example/tech/"\n',
    )
    newsroom.config_path.write_text(text, encoding="utf-8")
    config = newsroom.config()
    store = Store(config.store_url)
    try:
        build_feeds(config, store, now=NOW, ping=False)
    finally:
        store.close()
    assert not (out / "beats/technology/index.html").exists()
    rss = etree.parse(str(out / "beats/technology/rss.xml")).getroot()
    assert rss.findtext("channel/link") == "https://cms.example/tech/"
    opml = etree.parse(str(out / "feeds.opml")).getroot()
    html_urls = {o.get("text"): o.get("htmlUrl") for o in opml.iter("outline")}
    assert html_urls["Test Times: Technology"] == "https://cms.example/tech/"
    assert html_urls["Test Times: Arjun Mehta"] == "https://cms.example/people/arjun/"


def test_a_beat_url_must_be_absolute(newsroom: Newsroom) -> None:
    from feedpub.errors import ConfigError

    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('title = "World"\n', 'title = "World"\nurl = "/world/"\n'), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"beats\[2\]\.url"):
        newsroom.config()


# ---- item 3: lead images for feed readers --------------------------------------------------


def test_lead_images_go_out_as_media_rss_and_json_feed_images(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    url = "https://news.example/media/release.jpg"
    rss = etree.parse(str(out / "beats/technology/rss.xml")).getroot()
    item = _by_title(rss, "channel/item", "title")["New software release for newsrooms"]
    content = item.find(f"{MEDIA}content")
    assert content is not None and dict(content.attrib) == {
        "url": url,
        "medium": "image",
        "type": "image/jpeg",
        "fileSize": "5120",
        "width": "1200",
        "height": "630",
    }
    assert content.findtext(f"{MEDIA}description") == "Screenshot of the release notes"
    thumb = item.find(f"{MEDIA}thumbnail")
    assert thumb is not None
    assert dict(thumb.attrib) == {"url": url, "width": "1200", "height": "630"}
    atom = etree.parse(str(out / "beats/technology/atom.xml")).getroot()
    entry = _by_title(atom, f"{ATOM}entry", f"{ATOM}title")["New software release for newsrooms"]
    assert entry.find(f"{MEDIA}content").get("width") == "1200"  # type: ignore[union-attr]
    assert entry.find(f"{MEDIA}thumbnail").get("url") == url  # type: ignore[union-attr]
    feed = json.loads((out / "beats/technology/feed.json").read_text(encoding="utf-8"))
    it = next(i for i in feed["items"] if i["title"] == "New software release for newsrooms")
    assert (it["image"], it["banner_image"]) == (url, url)
    # Without a size, no width/height (never "None" or 0).
    plain = next(i for i in rss.iter("item") if i.find(f"{MEDIA}content") is None)
    assert plain.find(f"{MEDIA}thumbnail") is None


# ---- item 9: author feeds name the author --------------------------------------------------


def test_an_author_feed_is_by_that_author(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    atom = etree.parse(str(out / "authors/arjun-mehta/atom.xml")).getroot()
    author = atom.find(f"{ATOM}author")
    assert author is not None
    assert author.findtext(f"{ATOM}name") == "Arjun Mehta"
    assert author.findtext(f"{ATOM}email") == "arjun@news.example"
    feed = json.loads((out / "authors/arjun-mehta/feed.json").read_text(encoding="utf-8"))
    assert feed["authors"] == [{"name": "Arjun Mehta"}]
    site = etree.parse(str(out / "atom.xml")).getroot()
    assert site.findtext(f"{ATOM}author/{ATOM}name") == "Test Times"  # the site's: the site


# ---- item 11: autodiscovery -----------------------------------------------------------------


def test_index_autodiscovery_lists_only_the_site_feeds(newsroom: Newsroom) -> None:
    out = _publish(newsroom)
    index = lxml_html.parse(str(out / "index.html")).getroot()
    alt = [ln.get("href") for ln in index.xpath("//head/link[@rel='alternate']")]
    assert alt == [
        "https://news.example/rss.xml",
        "https://news.example/atom.xml",
        "https://news.example/feed.json",
    ]
    # Every feed is still listed in the body for people.
    assert len(index.xpath("//span[@class='formats']")) >= 6


def test_feedpub_serve_answers_the_pages_feeds_link_to(newsroom: Newsroom) -> None:
    """`feedpub serve` serves a beat's and an author's link (no more 404)."""
    import threading

    import httpx

    from feedpub.clock import running_from
    from feedpub.web.server import make_server

    out = _publish(newsroom)
    config = newsroom.config()
    store = Store(config.store_url)
    server = make_server(config, store, "127.0.0.1", 0, clock=running_from(NOW))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            for path in ("/beats/technology/", "/authors/arjun-mehta/", "/beats/world/"):
                r = client.get(path)
                assert r.status_code == 200, path
                assert r.headers["content-type"].startswith("text/html")
                assert r.content == (out / path.strip("/") / "index.html").read_bytes()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        store.close()


def test_sample_newsroom_json_feeds_match_the_schema(tmp_path: Path) -> None:
    """The sample's JSON Feeds (with item languages, image and banner_image) against the
    JSON Feed 1.1 schema; tests/test_feeds_w3c.py runs the W3C validator on its XML."""
    import shutil

    import jsonschema

    from feedpub.config import load_config

    sample = Path(__file__).resolve().parents[1]
    shutil.copytree(sample / "content", tmp_path / "content")
    text = (sample / "config.toml").read_text(encoding="utf-8")
    (tmp_path / "config.toml").write_text(text.replace('templates_dir = "templates"', ""))
    config = load_config(tmp_path / "config.toml")
    store = Store(config.store_url)
    try:
        collect(config, store, now=NOW)
        build_feeds(config, store, now=NOW, ping=False)
    finally:
        store.close()
    schema = json.loads((Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json").read_text())
    checker = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    files = sorted(config.output_dir.rglob("feed.json"))
    assert len(files) >= 10
    langs: set[str] = set()
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        errors = [e.message for e in checker.iter_errors(doc)]
        assert errors == [], f
        langs |= {i["language"] for i in doc["items"]}
        for i in doc["items"]:
            assert ("image" in i) == ("banner_image" in i)
    assert {"ar", "uk", "en"} <= langs


def test_an_upstream_media_rss_size_is_kept() -> None:
    """Width and height an upstream feed states travel on to our Media RSS."""
    from feedpub.sources.upstream import image
    from feedpub.sources.upstream_parse import parse_feed

    body = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>U</title>
<link>https://up.example/</link><description>d</description>
<item><title>A</title><link>https://up.example/a</link><guid>a</guid>
<media:content url="https://up.example/a.jpg" medium="image" type="image/jpeg"
 width="800" height="450" fileSize="999"/></item>
<item><title>B</title><link>https://up.example/b</link><guid>b</guid>
<media:thumbnail url="https://up.example/b.jpg" width="120"/></item>
</channel></rss>"""
    feed = parse_feed(body, "application/rss+xml")
    a, b = (e.image for e in feed.entries)
    assert a is not None and (a.width, a.height, a.length) == (800, 450, 999)
    got = image(a.url, "https://up.example/a", a.type, a.length, a.width, a.height)
    assert got is not None and (got.width, got.height) == (800, 450)
    assert b is not None and b.width == 120 and b.height is None
    half = image(b.url, "https://up.example/b", None, None, b.width, b.height)
    assert half is not None and (half.width, half.height) == (None, None)  # both or neither


def test_pages_offer_sign_up_only_for_newsletters_that_carry_the_beat(
    newsroom: Newsroom,
) -> None:
    """A beat page links to the sign-up page of each newsletter carrying that beat; with
    sign-up switched off, no page links to one (and turning it off rewrites the pages)."""
    extra = AUTHORS + '\n[[newsletters]]\nslug = "tech"\ntitle = "Tech Weekly"\n'
    extra += 'from = "T <t@news.example>"\nschedule = "0 8 * * MON"\nbeats = ["technology"]\n'
    extra += 'postal_address = "1 Test Street"\n'
    out = _publish(newsroom, extra)

    def offers(folder: str) -> list[str]:
        page = lxml_html.parse(str(out / folder / "index.html")).getroot()
        return [str(a.get("href")) for a in page.xpath("//p[@class='signup']//a")]

    assert offers("beats/technology") == [
        "https://news.example/subscribe/daily",
        "https://news.example/subscribe/tech",
    ]
    assert offers("beats/world") == ["https://news.example/subscribe/daily"]
    out = _publish(newsroom, extra + "\n[signup]\nenabled = false\n")
    assert offers("beats/technology") == [] and offers("authors/arjun-mehta") == []
