"""The pure feeds decider: no I/O, explicit ``now``. Stored plain text is published as
written; an item's categories are its beat, then its tags without repeating the beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedpub.config import parse_config
from feedpub.feeds.model import FeedKind, Format
from feedpub.feeds.plan import (
    EPOCH,
    AuthorRow,
    Slot,
    affected_feeds,
    atom_id,
    current_ids,
    doc_fingerprint,
    feed_specs,
    full_pages,
    is_visible,
    make_doc,
    page_of,
    tail_of,
    to_item,
)
from feedpub.types import Article, ArticleStatus, Image

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CFG = parse_config(
    {
        "site": {
            "title": "T",
            "base_url": "https://t.example/",
            "timezone": "Asia/Colombo",
            "websub_hub": "https://hub.example/",
        },
        "output": {
            "items_per_feed": 2,
            "beat_path": "topics/{slug}",
            "base_url": "https://cdn.example/f/",
        },
        "beats": [{"slug": "tech", "title": "Technology"}],
    }
)


def art(**kw: object) -> Article:
    base: dict[str, object] = {
        "id": "tag:t.example,2026:/a/",
        "url": "https://t.example/a/",
        "slug": "a",
        "title": "A",
        "authors": ("Ann", "Bob"),
        "author_slugs": ("ann", "bob"),
        "beat": "tech",
        "tags": ("x", "Technology"),
        "published": NOW - timedelta(days=1),
        "updated": NOW - timedelta(days=1),
        "summary": "S",
        "content_html": "<p>C</p>",
        "reading_minutes": 1,
        "status": ArticleStatus.PUBLISHED,
    }
    base.update(kw)
    return Article(**base)  # type: ignore[arg-type]


def test_visibility_needs_published_status_and_time() -> None:
    assert is_visible("published", NOW, NOW)
    assert not is_visible("published", NOW + timedelta(seconds=1), NOW)
    assert not is_visible("scheduled", NOW - timedelta(days=1), NOW)
    assert not is_visible("retracted", NOW - timedelta(days=1), NOW)


def test_specs_paths_and_urls_follow_output_patterns() -> None:
    specs = feed_specs(
        CFG, [AuthorRow("zed", "Zed"), AuthorRow("ann", "Ann", uri="https://ann.example/")]
    )
    assert [(s.kind, s.key, s.dir) for s in specs] == [
        (FeedKind.SITE, "", ""),
        (FeedKind.BEAT, "tech", "topics/tech/"),
        (FeedKind.AUTHOR, "ann", "authors/ann/"),
        (FeedKind.AUTHOR, "zed", "authors/zed/"),
    ]
    assert specs[1].path(Format.JSON, 3) == "topics/tech/archive/3/feed.json"
    # Beat and author pages are written in the output folder, so their URLs are where it
    # is served ([output] base_url); an author's uri is the person's, not the page.
    assert specs[1].home_url == "https://cdn.example/f/topics/tech/"
    assert specs[2].home_url == "https://cdn.example/f/authors/ann/"
    assert specs[2].author is not None and specs[2].author.uri == "https://ann.example/"
    assert [s.page for s in specs] == [False, True, True, True]
    doc = make_doc(CFG, specs[1], [], page=None, n_full=0)
    assert doc.info.self_url(Format.RSS) == "https://cdn.example/f/topics/tech/rss.xml"
    assert doc.info.updated == EPOCH  # an empty feed never claims the build time


def test_paging_and_current_document() -> None:
    slots = [Slot(f"a{i}", 1, i != 1) for i in range(7)]
    assert full_pages(len(slots), 3) == 2
    assert full_pages(5, 3) == 0  # a lone full page stays in the current feed
    assert [s.id for s in tail_of(slots[:5], 3)] == ["a0", "a1", "a2", "a3", "a4"]
    assert [s.id for s in page_of(slots, 2, 3)] == ["a3", "a4", "a5"]
    assert [s.id for s in tail_of(slots, 3)] == ["a6"]
    # newest by date plus the visible open page: nothing falls between archive and current.
    assert current_ids(["a5", "a4"], tail_of(slots, 3)) == {"a4", "a5", "a6"}


def test_archive_links() -> None:
    spec = feed_specs(CFG, [])[0]
    cur = make_doc(CFG, spec, [], page=None, n_full=3).info
    assert cur.prev_archive_url(Format.ATOM) == "https://cdn.example/f/archive/3/atom.xml"
    assert not cur.is_archive and cur.current_url(Format.ATOM) is None
    p1 = make_doc(CFG, spec, [], page=1, n_full=0).info
    assert p1.is_archive and p1.prev_archive_url(Format.RSS) is None
    assert p1.next_archive_url(Format.RSS) == "https://cdn.example/f/archive/2/rss.xml"
    assert p1.current_url(Format.RSS) == "https://cdn.example/f/rss.xml"
    p2 = make_doc(CFG, spec, [], page=2, n_full=0).info
    assert p2.prev_archive_url(Format.JSON) == "https://cdn.example/f/archive/1/feed.json"
    assert p2.next_archive_url(Format.JSON) is None
    assert p2.hub == "https://hub.example/"


def test_item_fields() -> None:
    authors = {"ann": AuthorRow("ann", "Ann", "ann@t.example")}
    item = to_item(
        art(image=Image("https://t.example/i.png", None, 0), updated=NOW - timedelta(days=2)),
        CFG,
        authors,
        {"tech": "Technology"},
    )
    assert item.atom_id == item.id and not item.guid_is_permalink
    assert [(p.name, p.email) for p in item.authors] == [("Ann", "ann@t.example"), ("Bob", None)]
    assert item.categories == ("Technology", "x")  # beat first, no duplicate
    assert item.image is not None and item.image.type == "image/png" and item.image.length is None
    assert item.updated >= item.published  # updated never before published
    assert item.published.utcoffset() == timedelta(hours=5, minutes=30)
    permalink = to_item(art(id="https://t.example/a/"), CFG, {}, {})
    assert permalink.guid_is_permalink


def test_dirty_stored_text_is_cleaned() -> None:
    item = to_item(art(title=" Hi\x01  <b>there</b> ", content_html="<p>x\x0b</p>"), CFG, {}, {})
    # Stored titles are plain text: control characters and runs of white space go, but
    # "<b>" is text a reader shows as typed (test_stored_plain_text_is_published_verbatim).
    assert item.title == "Hi <b>there</b>"
    assert item.content_html == "<p>x </p>"  # a control character becomes a space (3525188)


def test_stored_plain_text_is_published_verbatim() -> None:
    # Stored titles are plain text (sources' contract): the feeds must not strip "tags"
    # out of them or decode entities a second time (an upstream title "a < b and c > d").
    a = art(title="Why <blink> died: a < b and c > d", summary="x &lt; y", tags=("R&amp;D",))
    it = to_item(a, CFG, {}, {"tech": "Technology"})
    assert it.title == "Why <blink> died: a < b and c > d"
    assert it.summary == "x &lt; y"
    assert it.categories == ("Technology", "R&amp;D")


def test_tag_repeating_the_beat_title_is_not_a_second_category() -> None:
    # Beat "Technology" plus tag "technology" showed as two categories in every reader
    # (5 of the sample newsroom's 22 articles).
    it = to_item(art(tags=("technology", "AI", "ai", "x")), CFG, {}, {"tech": "Technology"})
    assert it.categories == ("Technology", "AI", "x")


def test_atom_id_of_non_iri_ids() -> None:
    assert atom_id("tag:t.example,2026:/a/") == "tag:t.example,2026:/a/"
    assert atom_id("abc 123") == "urn:feedpub:abc%20123"


def test_fingerprint_moves_with_generation_only() -> None:
    a = doc_fingerprint("c", "atom.xml", 1, [("x", 1), ("y", 2)])
    assert a == doc_fingerprint("c", "atom.xml", 1, [("x", 1), ("y", 2)])
    assert a != doc_fingerprint("c", "atom.xml", 1, [("x", 1), ("y", 3)])
    assert a != doc_fingerprint("c", "atom.xml", 2, [("x", 1), ("y", 2)])
    assert a != doc_fingerprint("d", "atom.xml", 1, [("x", 1), ("y", 2)])


def test_affected_feeds() -> None:
    assert affected_feeds([], {"beat:a": 1}, {"beat:a": 1}) == set()
    got = affected_feeds([("tech", ["ann"])], {}, {})
    assert got == {"site:", "beat:tech", "author:ann"}
    # An article moved from beat "old" to "tech": "old" lost one and is rebuilt too.
    moved = affected_feeds(
        [("tech", [])], {"beat:old": 2, "beat:tech": 1}, {"beat:old": 1, "beat:tech": 2}
    )
    assert moved == {"site:", "beat:tech", "beat:old"}
