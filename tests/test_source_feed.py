"""[[sources]] type = "feed": real HTTP on 127.0.0.1 serving the shapes real CMSs produce
(Wix, WordPress, Ghost, Atom, JSON Feed), conditional GET, redirects and every fault."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema
from feedpub.cli import main
from feedpub.collect import collect
from feedpub.config import Config, FeedSourceConfig, parse_config
from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.feed import FeedSource
from feedpub.sources.upstream_state import reenable, upstream_states
from feedpub.store import Store
from feedpub.types import ParsedArticle

from .conftest import Newsroom
from .upstream_http import DATA, UpstreamServer, running_server

NOW = datetime(2025, 2, 20, 12, 0, tzinfo=UTC)
RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[UpstreamServer]:
    yield from running_server()


@pytest.fixture
def config() -> Config:
    return parse_config(
        {
            "site": {"title": "T", "base_url": "https://news.example/", "timezone": "Asia/Colombo"},
            "beats": [
                {"slug": "world", "title": "World"},
                {"slug": "sport", "title": "Sport"},
                {"slug": "russia-ukraine-war", "title": "Russia-Ukraine war"},
            ],
        }
    )


def fetch(
    config: Config,
    url: str,
    *,
    state: dict[str, str] | None = None,
    known: dict[str, str] | None = None,
    now: datetime = NOW,
    fp: str = "rules-1",
    **cfg: Any,
) -> tuple[SourceResult, SourceContext]:
    src = FeedSource(FeedSourceConfig(type="feed", url=url, **cfg), "up")
    ctx = SourceContext(
        config, now, state if state is not None else {}, known or {}, rules_fingerprint=fp
    )
    return src.fetch(ctx), ctx


def by_key(result: SourceResult) -> dict[str, ParsedArticle]:
    return {a.key: a for a in result.articles}


def known_of(result: SourceResult) -> dict[str, str]:
    return {a.key: "hash" for a in result.articles}


# ----------------------------------------------------------------------- CMS shapes


def test_wix_blog_feed(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/blog-feed.xml", "wix-blog-feed.xml", content_type=RSS)
    r, _ = fetch(config, server.url("/blog-feed.xml"))
    assert r.status == "ok" and not r.rejected and r.error is None
    arts = by_key(r)
    assert list(arts) == [
        "67b06f2a1b9c4d0012a3f001",
        "67b06f2a1b9c4d0012a3f002",
        "67b06f2a1b9c4d0012a3f003",
    ]  # guid isPermaLink="false" is the stable key
    a = arts["67b06f2a1b9c4d0012a3f001"]
    assert a.title == "Ukraine’s Security and Peace Agreement"
    assert a.url == "https://www.jadetimes.example/post/ukraine-s-security-and-peace-agreement"
    assert a.slug == "ukraine-s-security-and-peace-agreement"
    assert a.authors == ("Iruni Kalupahana",)
    assert a.published == datetime(2025, 2, 15, 8, 30, 12, tzinfo=UTC)
    assert a.updated is None  # feedparser's pubDate copy is not an edit date
    assert a.tags == ("Russia-Ukraine War", "World News")
    assert a.image is not None and a.image.url.startswith("https://static.wixstatic.com/")
    assert a.image.type == "image/png" and a.image.length is None  # Wix writes length="0"
    assert a.content_html.startswith("<p>Ukraine’s Pre-2014 Borders")  # excerpt as a paragraph
    # Entities decoded exactly once in titles; escaped once in HTML.
    b = arts["67b06f2a1b9c4d0012a3f002"]
    assert b.title == "Sri Lanka's Budget 2025: What & Why"
    assert "tax revenue &amp; IMF" in b.content_html
    c = arts["67b06f2a1b9c4d0012a3f003"]
    assert "<script" not in c.content_html and "alert" not in c.content_html
    assert c.summary == "A late surge carried the Lions to a 2-1 series win."
    assert any("excerpts only" in w for w in r.warnings)
    assert r.complete is False  # a feed is a window


def test_wordpress_content_encoded(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/feed/", "wordpress-feed.xml", content_type=RSS)
    r, _ = fetch(config, server.url("/feed/"))
    arts = by_key(r)
    a = arts["https://gazette.example/?p=4812"]
    assert a.url == "https://gazette.example/2025/02/17/port-strike-enters-its-third-day/"
    assert a.slug == "port-strike-enters-its-third-day"
    assert a.authors == ("Maria Okafor",) and a.tags == ("Local", "Labour")
    assert a.language == "en-GB"
    # Full text from content:encoded, made absolute against the entry's own URL.
    assert "talks between the union and the port authority" in a.content_html
    assert (
        'src="https://gazette.example/wp-content/uploads/2025/02/strike-1024x683.jpg"'
        in a.content_html
    )
    assert 'href="https://gazette.example/2025/01/30/pay-talks-begin/"' in a.content_html
    for bad in ("<iframe", "onclick", "srcset", "appeared first on", "class="):
        assert bad not in a.content_html
    # Summary from the excerpt, without WordPress's "[…]".
    assert (
        a.summary == "Dock workers stayed off the job for a third day on Monday as talks stalled."
    )
    assert arts["https://gazette.example/?p=4807"].title == (
        "Council approves new ferry timetable – from March"
    )
    assert not any("excerpts only" in w for w in r.warnings)


def test_ghost_rss(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/rss/", "ghost-rss.xml", content_type=RSS)
    r, _ = fetch(config, server.url("/rss/"))
    a = by_key(r)["67b3a1c2d4e5f60001a0b0c1"]
    assert a.authors == ("Ana Lima", "Sam Cho")  # Ghost joins co-authors in one dc:creator
    assert a.image is not None
    assert a.image.url == "https://ledger.example/content/images/2025/02/dam.jpg"  # media:content
    assert 'src="https://ledger.example/content/images/2025/02/crack.jpg"' in a.content_html
    assert "loading=" not in a.content_html


def test_atom_feed(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/atom.xml", "atom.xml", content_type="application/atom+xml")
    r, _ = fetch(config, server.url("/atom.xml"))
    arts = by_key(r)
    a = arts["tag:blog.example,2025:entry-101"]
    assert a.title == "Lawinenwarnung <Stufe 4> für die Alpen"  # type="html": unescaped once
    assert a.url == "https://blog.example/2025/02/lawinenwarnung/"  # relative link, xml:base
    assert a.authors == ("Lena Berger", "Jonas Huber")
    assert a.published == datetime(2025, 2, 18, 7, 0, tzinfo=UTC)
    assert a.updated == datetime(2025, 2, 18, 10, 30, tzinfo=UTC)
    assert 'src="https://blog.example/2025/02/lawinenwarnung/karte.png"' in a.content_html
    assert "javascript:" not in a.content_html
    assert a.image is not None and a.image.length == 48213 and a.image.type == "image/jpeg"
    assert a.language == "de-DE" and a.tags == ("Wetter",)
    b = arts["tag:blog.example,2025:entry-100"]
    # Only <updated>: it is the publication date, not an edit.
    assert b.published == datetime(2025, 2, 17, 15, 0, tzinfo=UTC) and b.updated is None
    assert b.content_html == "<p>Die neue <em>Seilbahn</em> fährt ab heute.</p>"  # xhtml content


def test_json_feed(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/feed.json", "feed.json", content_type="application/feed+json")
    r, _ = fetch(config, server.url("/feed.json"))
    arts = by_key(r)
    assert list(arts) == ["https://dispatch.example/p/2041", "2040"]  # numeric id as text
    a = arts["https://dispatch.example/p/2041"]
    assert a.authors == ("Priya Nair", "Dev Patel") and a.tags == ("Climate", "Local")
    assert a.published == datetime(2025, 2, 18, 11, 0, tzinfo=UTC)
    assert a.updated == datetime(2025, 2, 18, 14, 0, tzinfo=UTC)
    assert 'src="https://dispatch.example/media/barrier.jpg"' in a.content_html
    assert "onerror" not in a.content_html
    assert a.language == "en-US"
    b = arts["2040"]
    assert b.authors == ("Dev Patel",)  # JSON Feed 1.0 "author"
    assert b.content_html == (
        "<p>The Saturday market returns to the square.</p><p>Stalls open at 8.</p>"
    )
    assert len(r.rejected) == 1 and "item 3: not a JSON object" in str(r.rejected[0])


def test_map_tags_to_beats_and_fixed_beat(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/blog-feed.xml", "wix-blog-feed.xml", content_type=RSS)
    url = server.url("/blog-feed.xml")
    r, _ = fetch(
        config,
        url,
        map_tags_to_beats={"world news": "world", "sports": "sport", "economy": "nope"},
    )
    beats = {a.key[-3:]: a.beat for a in r.articles}
    assert beats == {"001": "world", "002": None, "003": "sport"}
    assert any("'nope', which is not a defined beat" in w for w in r.warnings)
    r2, _ = fetch(config, url, beat="sport", author="Desk")
    assert {a.beat for a in r2.articles} == {"sport"}
    # ``author`` only fills in for entries without one.
    assert r2.articles[0].authors == ("Iruni Kalupahana",)


def test_full_text_for_excerpt_only_feeds(server: UpstreamServer, config: Config) -> None:
    """Wix feeds carry excerpts: full_text = true fetches each new or changed entry's page."""
    body = (
        (DATA / "wix-blog-feed.xml")
        .read_text()
        .replace("https://www.jadetimes.example", server.url(""))
    )
    server.route("/blog-feed.xml", body=body.encode(), content_type=RSS, etag='"w1"')
    ukraine, budget, cricket = (
        "/post/ukraine-s-security-and-peace-agreement",
        "/post/sri-lanka-s-budget-2025-what-why",
        "/post/cricket-lions-win-the-series",
    )
    server.serve_file(ukraine, "page-wix.html", content_type="text/html")
    server.serve_file(cricket, "page-undated.html", content_type="text/html")
    url = server.url("/blog-feed.xml")
    r1, ctx = fetch(config, url, full_text=True)
    arts = {a.url.removeprefix(server.url("")): a for a in r1.articles}
    assert len(arts) == 3
    full = arts[ukraine]
    assert full.key == "67b06f2a1b9c4d0012a3f001"  # the feed's identity and metadata stay
    assert full.published == datetime(2025, 2, 15, 8, 30, 12, tzinfo=UTC)
    assert "<h2>Challenges in Ensuring Ukraine’s Security</h2>" in full.content_html
    assert full.reading_minutes == 1 and "JadeTimes Staff" not in full.content_html
    assert full.author_bios and full.author_bios[0][2] == "russia-ukraine-war"
    assert full.summary.startswith("The idea of returning Ukraine")
    # The budget page is missing: the excerpt is kept, with a warning, and tried again.
    assert arts[budget].content_html.startswith("<p>The government presented")
    assert any("full text not fetched" in w and budget in w for w in r1.warnings)
    assert ctx.state["full_text_pending"] == "1"

    server.serve_file(budget, "page-wordpress.html", content_type="text/html")
    hits = len(server.hits_for(ukraine)), len(server.hits_for(cricket))
    r2, ctx2 = fetch(config, url, full_text=True, state=ctx.state, known=known_of(r1))
    assert [a.key for a in r2.articles] == ["67b06f2a1b9c4d0012a3f002"]
    assert "union is asking" in r2.articles[0].content_html
    assert r2.unchanged_keys == {"67b06f2a1b9c4d0012a3f001", "67b06f2a1b9c4d0012a3f003"}
    assert (len(server.hits_for(ukraine)), len(server.hits_for(cricket))) == hits
    assert "full_text_pending" not in ctx2.state
    r3, _ = fetch(config, url, full_text=True, state=ctx2.state, known=known_of(r1))
    assert r3.status == "not-modified"

    # The entry changes upstream but its page fails: the stored full text is kept.
    server.route(ukraine, status=503)
    server.route("/blog-feed.xml", body=body.replace("Ukraine’s Security", "Ukraine’s Safety").encode(),
                 content_type=RSS, etag='"w2"')  # fmt: skip
    r5, ctx5 = fetch(config, url, full_text=True, state=ctx2.state, known=known_of(r1))
    assert r5.articles == [] and "67b06f2a1b9c4d0012a3f001" in r5.unchanged_keys
    assert any("kept the stored version" in w for w in r5.warnings)
    assert ctx5.state["full_text_pending"] == "1"

    # A per-run limit: new entries wait for their full text rather than go out as excerpts.
    r4, ctx4 = fetch(config, url, full_text=True, full_text_per_run=1)
    assert len(r4.articles) == 1 and any("2 entries wait" in w for w in r4.warnings)
    assert ctx4.state["full_text_pending"] == "1"


def test_undated_entry_keeps_its_first_seen_date(server: UpstreamServer, config: Config) -> None:
    body = (DATA / "wordpress-feed.xml").read_bytes()
    body = body.replace(b"<pubDate>Mon, 17 Feb 2025 07:30:00 +0000</pubDate>", b"")
    server.route("/feed/", body=body, content_type=RSS)
    r, ctx = fetch(config, server.url("/feed/"))
    a = by_key(r)["https://gazette.example/?p=4812"]
    assert a.published == NOW
    assert any("no date" in w for w in r.warnings) and a.warnings
    # Next poll, an hour later: same date (no spurious edit), no new warning.
    r2, _ = fetch(
        config,
        server.url("/feed/"),
        state=dict(ctx.state),
        known=known_of(r),
        now=NOW + timedelta(hours=1),
        fp="rules-2",
    )
    assert by_key(r2)["https://gazette.example/?p=4812"].published == NOW
    assert not any("no date" in w for w in r2.warnings)


# ----------------------------------------------------------------------- HTTP behaviour


def test_conditional_get_304(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/feed/", "wordpress-feed.xml", content_type=RSS, etag='"v1"')
    url = server.url("/feed/")
    r1, ctx1 = fetch(config, url)
    assert r1.status == "ok" and len(r1.articles) == 2
    assert ctx1.state["etag"] == '"v1"'
    assert "if-none-match" not in server.hits_for("/feed/")[0].headers
    known = known_of(r1)
    r2, _ = fetch(config, url, state=ctx1.state, known=known)
    assert server.hits_for("/feed/")[1].headers["if-none-match"] == '"v1"'
    assert r2.status == "not-modified" and r2.articles == []
    assert r2.unchanged_keys == set(known)
    # The upstream changes: a new ETag and the new body are collected.
    server.serve_file("/feed/", "ghost-rss.xml", content_type=RSS, etag='"v2"')
    r3, ctx3 = fetch(config, url, state=ctx1.state, known=known)
    assert r3.status == "ok" and len(r3.articles) == 2 and ctx3.state["etag"] == '"v2"'


def test_last_modified_and_unchanged_body(server: UpstreamServer, config: Config) -> None:
    lm = "Mon, 17 Feb 2025 07:45:10 GMT"
    server.serve_file("/lm", "ghost-rss.xml", content_type=RSS, last_modified=lm)
    r1, ctx = fetch(config, server.url("/lm"))
    r2, _ = fetch(config, server.url("/lm"), state=ctx.state, known=known_of(r1))
    assert server.hits_for("/lm")[1].headers["if-modified-since"] == lm
    assert r2.status == "not-modified"
    # A server without validators: the same bytes are not parsed again.
    server.serve_file("/plain", "ghost-rss.xml", content_type=RSS)
    r3, ctx3 = fetch(config, server.url("/plain"))
    r4, _ = fetch(config, server.url("/plain"), state=ctx3.state, known=known_of(r3))
    assert r4.status == "not-modified" and r4.unchanged_keys == set(known_of(r3))


def test_config_change_refetches_in_full(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/feed/", "wordpress-feed.xml", content_type=RSS, etag='"v1"')
    r1, ctx = fetch(config, server.url("/feed/"))
    r2, _ = fetch(config, server.url("/feed/"), state=ctx.state, known=known_of(r1), fp="other")
    assert "if-none-match" not in server.hits_for("/feed/")[1].headers
    assert r2.status == "ok" and len(r2.articles) == 2


def test_gzip_response(server: UpstreamServer, config: Config) -> None:
    body = gzip.compress((DATA / "ghost-rss.xml").read_bytes())
    server.route("/gz", body=body, content_type=RSS, headers={"Content-Encoding": "gzip"})
    r, _ = fetch(config, server.url("/gz"))
    assert r.status == "ok" and len(r.articles) == 2


def test_permanent_redirect_updates_stored_url(server: UpstreamServer, config: Config) -> None:
    server.route("/old.xml", status=301, headers={"Location": "/new.xml"})
    server.serve_file("/new.xml", "ghost-rss.xml", content_type=RSS, etag='"n1"')
    old = server.url("/old.xml")
    r1, ctx = fetch(config, old)
    assert r1.status == "ok" and len(r1.articles) == 2
    assert ctx.state["url"] == server.url("/new.xml") and ctx.state["moved_from"] == old
    assert any("moved permanently" in w and "Update url in config.toml" in w for w in r1.warnings)
    # Next poll goes straight to the new URL, conditionally.
    r2, _ = fetch(config, old, state=ctx.state, known=known_of(r1))
    assert len(server.hits_for("/old.xml")) == 1
    assert server.hits_for("/new.xml")[-1].headers["if-none-match"] == '"n1"'
    assert r2.status == "not-modified"
    # The operator edits the config to another URL: the remembered move is dropped.
    server.serve_file("/other.xml", "atom.xml", content_type="application/atom+xml")
    r3, ctx3 = fetch(config, server.url("/other.xml"), state=ctx.state, known=known_of(r1))
    assert r3.status == "ok" and "url" not in ctx3.state


def test_temporary_redirect_is_followed_not_stored(server: UpstreamServer, config: Config) -> None:
    server.route("/tmp.xml", status=302, headers={"Location": server.url("/real.xml")})
    server.serve_file("/real.xml", "ghost-rss.xml", content_type=RSS)
    r, ctx = fetch(config, server.url("/tmp.xml"))
    assert r.status == "ok" and len(r.articles) == 2
    assert "url" not in ctx.state and not any("moved" in w for w in r.warnings)


def test_redirect_loop(server: UpstreamServer, config: Config) -> None:
    server.route("/a", status=302, headers={"Location": "/b"})
    server.route("/b", status=302, headers={"Location": "/a"})
    r, _ = fetch(config, server.url("/a"))
    assert r.status == "error" and "more than 5 redirects" in (r.error or "")


# ----------------------------------------------------------------------- faults


def test_slow_server_times_out(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/slow", "ghost-rss.xml", content_type=RSS, delay=1.0)
    r, ctx = fetch(config, server.url("/slow"), timeout=0.2)
    assert r.status == "error" and r.articles == []
    assert r.error is not None and r.error.startswith("timeout:") and "0.2 s" in r.error
    assert "etag" not in ctx.state


def test_410_disables_the_source(server: UpstreamServer, config: Config, tmp_path: Path) -> None:
    server.route("/gone.xml", status=410, body=b"gone")
    url = server.url("/gone.xml")
    r1, ctx = fetch(config, url)
    assert r1.status == "disabled"
    assert "410 Gone" in (r1.error or "") and "disabled" in (r1.error or "")
    assert "2025-02-20T12:00:00+00:00" in ctx.state["disabled"]
    # Later collects do not contact the host.
    r2, _ = fetch(config, url, state=ctx.state, now=NOW + timedelta(days=1))
    assert r2.status == "disabled" and len(server.hits_for("/gone.xml")) == 1
    assert "not contacted" in (r2.error or "")
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        with store.begin() as conn:
            for k, v in ctx.state.items():
                conn.execute(sa.insert(schema.source_state).values(source="up", key=k, value=v))
        with store.read() as conn:
            (st,) = upstream_states(conn)
        assert st.source == "up" and st.disabled == ctx.state["disabled"]
        with store.begin() as conn:
            assert reenable(conn, "up") and not reenable(conn, "up")
        with store.read() as conn:
            assert upstream_states(conn) == []
    # A new URL in the config re-enables it.
    server.serve_file("/back.xml", "ghost-rss.xml", content_type=RSS)
    r3, ctx3 = fetch(config, server.url("/back.xml"), state=ctx.state)
    assert r3.status == "ok" and "disabled" not in ctx3.state


def test_404_is_an_error_not_a_disable(server: UpstreamServer, config: Config) -> None:
    r, ctx = fetch(config, server.url("/missing.xml"))
    assert r.status == "error" and "HTTP 404 Not Found" in (r.error or "")
    assert "disabled" not in ctx.state


def test_unreachable_host(config: Config) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r, _ = fetch(config, f"http://127.0.0.1:{port}/feed.xml", timeout=2)
    assert r.status == "error" and (r.error or "").startswith("unreachable:")


def test_malformed_xml_imports_what_parses(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/bugle.xml", "malformed.xml", content_type=RSS)
    r, _ = fetch(config, server.url("/bugle.xml"))
    assert r.status == "ok"
    assert [a.title for a in r.articles] == ["Fish & chips prices rise", "Harbour light repaired"]
    assert any(
        "ill-formed XML at line 8" in w and "imported the 2 entries that parsed" in w
        for w in r.warnings
    )
    assert len(r.rejected) == 1 and "entry 3" in str(r.rejected[0])
    # An ill-formed feed never retracts: it may have lost entries.
    r2, _ = fetch(config, server.url("/bugle.xml"), retract_missing=True)
    assert r2.complete is False


def test_oversize_response(server: UpstreamServer, config: Config) -> None:
    body = (DATA / "wordpress-feed.xml").read_bytes() * 3
    server.route("/big", body=body, content_type=RSS)
    r, _ = fetch(config, server.url("/big"), max_bytes=2048)
    assert r.status == "error" and "over the limit of 2,048" in (r.error or "")
    # Chunked, no Content-Length: cut off while streaming.
    server.route("/big-chunked", body=body, content_type=RSS, chunked=True)
    r2, _ = fetch(config, server.url("/big-chunked"), max_bytes=2048)
    assert r2.status == "error" and "exceeds the limit of 2,048" in (r2.error or "")


def test_not_a_feed(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/page", "page-undated.html", content_type="text/html")
    r, _ = fetch(config, server.url("/page"))
    assert r.status == "error" and "not an RSS, Atom or JSON feed" in (r.error or "")
    server.route("/bad.json", body=b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
                 content_type="application/feed+json")  # fmt: skip
    r2, _ = fetch(config, server.url("/bad.json"))
    assert r2.status == "error" and "ill-formed JSON at line 1" in (r2.error or "")


def test_retract_missing_makes_the_result_complete(server: UpstreamServer, config: Config) -> None:
    server.serve_file("/rss/", "ghost-rss.xml", content_type=RSS)
    r, _ = fetch(config, server.url("/rss/"), retract_missing=True)
    assert r.complete is True


# ----------------------------------------------------------------------- through collect


def feed_sources(server: UpstreamServer) -> str:
    return f"""
    [[sources]]
    type = "feed"
    name = "wix"
    url = "{server.url("/blog-feed.xml")}"

    [[sources]]
    type = "feed"
    name = "gone"
    url = "{server.url("/gone.xml")}"

    [[sources]]
    type = "feed"
    name = "slow"
    url = "{server.url("/slow.xml")}"
    timeout = 0.2
    """


def test_collect_end_to_end(newsroom: Newsroom, server: UpstreamServer) -> None:
    server.serve_file("/blog-feed.xml", "wix-blog-feed.xml", content_type=RSS, etag='"w1"')
    server.route("/gone.xml", status=410)
    server.serve_file("/slow.xml", "ghost-rss.xml", content_type=RSS, delay=1.0)
    newsroom.set_config(feed_sources(server))
    store = newsroom.store()
    rep = collect(newsroom.config(), store, now=NOW)
    status = {s.name: s for s in rep.sources}
    assert status["wix"].status == "ok" and status["wix"].counts["new"] == 3
    assert status["gone"].status == "disabled" and "410" in (status["gone"].error or "")
    assert status["slow"].status == "error" and "timeout" in (status["slow"].error or "")
    with store.read() as conn:
        stored = {a.title: a for a in store.load_articles(conn)}
    ukraine = stored["Ukraine’s Security and Peace Agreement"]
    assert ukraine.beat == "russia-ukraine-war"  # collect's author rule
    assert ukraine.url.startswith("https://www.jadetimes.example/post/")
    # Second collect: one 304 for the Wix feed, nothing for the disabled one.
    server.routes["/slow.xml"].delay = 0
    rep2 = collect(newsroom.config(), store, now=NOW + timedelta(minutes=5))
    status2 = {s.name: s for s in rep2.sources}
    assert status2["wix"].status == "not-modified" and status2["wix"].counts["unchanged"] == 3
    assert status2["gone"].status == "disabled" and len(server.hits_for("/gone.xml")) == 1
    assert status2["slow"].status == "ok" and status2["slow"].counts["new"] == 2
    assert server.hits_for("/blog-feed.xml")[-1].headers.get("if-none-match") == '"w1"'
    # Ids never change across polls.
    with store.read() as conn:
        again = {a.title: a for a in store.load_articles(conn)}
    assert again["Ukraine’s Security and Peace Agreement"].id == ukraine.id
    store.close()


def test_collect_cli_reports_each_source(newsroom: Newsroom, server: UpstreamServer) -> None:
    server.serve_file("/blog-feed.xml", "wix-blog-feed.xml", content_type=RSS)
    server.route("/gone.xml", status=410)
    server.serve_file("/slow.xml", "malformed.xml", content_type=RSS)
    newsroom.set_config(feed_sources(server))
    res = CliRunner().invoke(
        main, ["--config", str(newsroom.config_path), "collect"], env={"COLUMNS": "200"}
    )
    out = res.output
    print(out)
    assert res.exit_code == 1, out  # a source failed / an entry was rejected; the rest stored
    assert "wix" in out and "gone [disabled]" in out
    assert "410 Gone" in out and "ill-formed XML" in out
