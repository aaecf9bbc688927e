"""The writers: feedgen (current feeds) and the streaming writer (archive pages) must
give the same feed; feedgen's known traps must stay handled; an empty body writes no
blank content element, and RSS shows a plain summary as written."""

from __future__ import annotations

import json
import locale
from datetime import UTC, datetime, timedelta

import feedparser
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from feedpub.feeds import feedgen_writer, jsonfeed, stream_writer
from feedpub.feeds.feedgen_writer import render_atom, render_rss
from feedpub.feeds.model import (
    FILE_NAMES,
    Enclosure,
    FeedDoc,
    FeedInfo,
    FeedKind,
    Format,
    Item,
    Person,
)
from feedpub.feeds.stream_writer import render_atom as stream_atom
from feedpub.feeds.stream_writer import render_rss as stream_rss
from feedpub.text import clean_text

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"


def urls(path: str) -> tuple[tuple[Format, str], ...]:
    return tuple((f, f"https://n.example/{path}{FILE_NAMES[f]}") for f in Format)


def info(**kw: object) -> FeedInfo:
    base: dict[str, object] = {
        "kind": FeedKind.SITE,
        "key": "",
        "title": "News & <Views>",
        "description": 'Desc "q"',
        "language": "uk",
        "home_url": "https://n.example/",
        "self_urls": urls(""),
        "updated": T0 + timedelta(hours=1),
        "generator": "feedpub",
        "generator_version": "0.1.0",
        "generator_uri": "https://github.com/feedpub/feedpub",
        "author": Person("News"),
        "hub": "https://hub.example/",
        "icon": "https://n.example/favicon.ico",
        "logo": "https://n.example/logo.png",
    }
    base.update(kw)
    return FeedInfo(**base)  # type: ignore[arg-type]


def item(n: int, title: str = "Title", **kw: object) -> Item:
    base: dict[str, object] = {
        "id": f"tag:n.example,2026:/p/{n}/",
        "atom_id": f"tag:n.example,2026:/p/{n}/",
        "guid_is_permalink": False,
        "url": f"https://n.example/p/{n}/",
        "title": title,
        "summary": "Sum & more",
        "content_html": '<p>Body &amp; <a href="https://n.example/x">x</a></p>',
        "authors": (Person("Ann", "ann@n.example", "https://n.example/ann"), Person("Оксана")),
        "categories": ("World", "tag & more"),
        "published": T0 - timedelta(hours=n),
        "updated": T0 - timedelta(hours=n) + timedelta(minutes=5),
        "image": Enclosure("https://n.example/i.jpg", "image/jpeg", 1234 if n % 2 else None),
    }
    base.update(kw)
    return Item(**base)  # type: ignore[arg-type]


DOCS = {
    "current": FeedDoc(info(prev_archive_urls=urls("archive/4/")), (item(1), item(2))),
    "archive": FeedDoc(
        info(
            is_archive=True,
            current_urls=urls(""),
            next_archive_urls=urls("archive/2/"),
            self_urls=urls("archive/1/"),
            hub=None,
            logo=None,
            icon=None,
        ),
        (item(3, "Ǝmoji 🎉 & عربى"),),
    ),
    "empty": FeedDoc(info(author=Person("News", "news@n.example")), ()),
}


def test_streaming_writer_is_byte_identical_to_feedgen() -> None:
    for name, doc in DOCS.items():
        assert stream_writer.render_rss(doc) == feedgen_writer.render_rss(doc), name
        assert stream_writer.render_atom(doc) == feedgen_writer.render_atom(doc), name


def _parsed(data: bytes) -> object:
    d = feedparser.parse(data)
    assert not d.bozo, d.bozo_exception
    return (dict(d.feed), [dict(e) for e in d.entries])


def test_streaming_writer_parses_the_same() -> None:
    for doc in DOCS.values():
        assert _parsed(stream_writer.render_rss(doc)) == _parsed(feedgen_writer.render_rss(doc))
        assert _parsed(stream_writer.render_atom(doc)) == _parsed(feedgen_writer.render_atom(doc))


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=40).map(clean_text).filter(lambda s: s.strip() == s and s))
def test_any_title_round_trips_escaped_once(title: str) -> None:
    doc = FeedDoc(info(), (item(1, title),))
    for render in (
        feedgen_writer.render_rss,
        feedgen_writer.render_atom,
        stream_writer.render_rss,
        stream_writer.render_atom,
    ):
        data = render(doc)
        root = etree.fromstring(data)
        got = root.findtext("channel/item/title") or root.findtext(f"{ATOM}entry/{ATOM}title")
        assert got == title.replace("\r", "\n")
    assert json.loads(jsonfeed.render_json(doc))["items"][0]["title"] == title


def test_feedgen_atom_enclosure_and_authors() -> None:
    root = etree.fromstring(feedgen_writer.render_atom(DOCS["current"]))
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    encl = [ln.attrib for ln in entry.findall(f"{ATOM}link") if ln.get("rel") == "enclosure"]
    assert encl == [
        {
            "rel": "enclosure",
            "href": "https://n.example/i.jpg",
            "type": "image/jpeg",
            "length": "1234",
        }
    ]
    assert [a.findtext(f"{ATOM}name") for a in entry.findall(f"{ATOM}author")] == ["Ann", "Оксана"]
    assert entry.find(f"{ATOM}content").get("type") == "html"  # type: ignore[union-attr]


def test_feedgen_rss_traps() -> None:
    # feedgen's own formatRFC2822 switches the process-wide locale (not thread-safe).
    assert feedgen_writer.feedgen.entry.formatRFC2822 is feedgen_writer.rfc822
    assert feedgen_writer.feedgen.feed.formatRFC2822 is feedgen_writer.rfc822
    before = locale.setlocale(locale.LC_ALL)
    data = feedgen_writer.render_rss(DOCS["current"])
    assert locale.setlocale(locale.LC_ALL) == before
    ch = etree.fromstring(data).find("channel")
    assert ch is not None
    assert ch.findtext("link") == "https://n.example/"  # not the self or hub link
    assert ch.findtext("lastBuildDate") == "Fri, 20 Nov 2026 10:00:00 +0000"  # not now
    rels = {ln.get("rel"): ln.get("href") for ln in ch.findall(f"{ATOM}link")}
    assert rels == {
        "self": "https://n.example/rss.xml",
        "hub": "https://hub.example/",
        "prev-archive": "https://n.example/archive/4/rss.xml",
    }
    items = ch.findall("item")
    assert [i.findtext("title") for i in items] == ["Title", "Title"]
    assert [i.findtext("guid") for i in items] == [
        "tag:n.example,2026:/p/1/",
        "tag:n.example,2026:/p/2/",
    ]
    second = items[1]
    assert second.find("enclosure").get("length") == "0"  # type: ignore[union-attr]
    creators = [c.text for c in second.findall("{http://purl.org/dc/elements/1.1/}creator")]
    assert creators == ["Ann", "Оксана"]  # Оксана has no email: nobody goes to <author>
    assert second.findall("author") == []
    solo = FeedDoc(info(), (item(1, authors=(Person("Ann", "ann@n.example"),)),))
    for render in (feedgen_writer.render_rss, stream_writer.render_rss):
        it = etree.fromstring(render(solo)).find("channel/item")
        assert it is not None
        assert [a.text for a in it.findall("author")] == ["ann@n.example (Ann)"]
        assert it.findall("{http://purl.org/dc/elements/1.1/}creator") == []


def test_json_feed_fields() -> None:
    doc = json.loads(jsonfeed.render_json(DOCS["current"]))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["feed_url"] == "https://n.example/feed.json"
    assert doc["next_url"] == "https://n.example/archive/4/feed.json"
    assert doc["hubs"] == [{"type": "WebSub", "url": "https://hub.example/"}]
    first = doc["items"][0]
    assert first["attachments"] == [
        {"url": "https://n.example/i.jpg", "mime_type": "image/jpeg", "size_in_bytes": 1234}
    ]
    assert first["date_published"] == "2026-11-20T08:00:00+00:00"
    assert [a["name"] for a in first["authors"]] == ["Ann", "Оксана"]


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
