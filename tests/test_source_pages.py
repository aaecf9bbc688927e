"""[[sources]] type = "pages": a sitemap (or a URL list) of article pages without a feed,
served by a real HTTP server on 127.0.0.1; extraction with trafilatura; politeness; faults."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedpub.collect import collect
from feedpub.config import Config, PagesSourceConfig, parse_config
from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.pages import Listed, PagesSource, plan_pages
from feedpub.types import ParsedArticle

from .conftest import Newsroom
from .upstream_http import DATA, UpstreamServer, running_server

NOW = datetime(2025, 2, 20, 12, 0, tzinfo=UTC)
HTML = "text/html; charset=utf-8"
WIX = "/post/ukraine-s-security-and-peace-agreement"
WP = "/post/port-strike-enters-its-third-day"
UNDATED = "/post/about-the-harbour-ferries"


@pytest.fixture
def server() -> Iterator[UpstreamServer]:
    srv: UpstreamServer
    for srv in running_server():
        srv.serve_file(WIX, "page-wix.html", content_type=HTML)
        srv.serve_file(WP, "page-wordpress.html", content_type=HTML)
        srv.serve_file(UNDATED, "page-undated.html", content_type=HTML)
        srv.serve_file("/about", "page-undated.html", content_type=HTML)
        set_sitemap(srv, "sitemap.xml", etag='"s1"')
        yield srv


def set_sitemap(srv: UpstreamServer, name: str, path: str = "/sitemap.xml", **kw: Any) -> None:
    body = (DATA / name).read_text().replace("{BASE}", srv.url("")).encode()
    srv.route(path, body=body, **kw)


@pytest.fixture
def config() -> Config:
    return parse_config(
        {
            "site": {"title": "T", "base_url": "https://news.example/", "timezone": "Asia/Colombo"},
            "beats": [
                {"slug": "russia-ukraine-war", "title": "Russia-Ukraine war"},
                {"slug": "world", "title": "World"},
            ],
        }
    )


def fetch(
    config: Config,
    *,
    state: dict[str, str] | None = None,
    known: dict[str, str] | None = None,
    now: datetime = NOW,
    fp: str = "r1",
    **cfg: Any,
) -> tuple[SourceResult, SourceContext]:
    cfg.setdefault("requests_per_second", 1000)  # keep tests fast; politeness has its own test
    src = PagesSource(PagesSourceConfig(type="pages", **cfg), "pages")
    ctx = SourceContext(
        config, now, state if state is not None else {}, known or {}, rules_fingerprint=fp
    )
    return src.fetch(ctx), ctx


def by_path(srv: UpstreamServer, result: SourceResult) -> dict[str, ParsedArticle]:
    return {a.key.removeprefix(srv.url("")): a for a in result.articles}


def known_of(result: SourceResult, *extra: str) -> dict[str, str]:
    return {k: "hash" for k in [*(a.key for a in result.articles), *extra]}


def test_sitemap_pages_are_extracted(server: UpstreamServer, config: Config) -> None:
    r, _ = fetch(config, sitemap=server.url("/sitemap.xml"), url_pattern=r"/post/")
    assert r.status == "ok" and not r.rejected, r.rejected
    arts = by_path(server, r)
    assert set(arts) == {WIX, WP, UNDATED}
    assert server.hits_for("/about") == []  # filtered out by url_pattern, never fetched

    wix = arts[WIX]
    assert wix.title == "Ukraine’s Security and Peace Agreement"
    assert wix.authors == ("Iruni Kalupahana",)  # JSON-LD author, not the profile URL meta
    assert wix.published == datetime(2025, 2, 15, 8, 30, 12, 345000, tzinfo=UTC)
    assert wix.updated is None  # dateModified == datePublished
    assert wix.image is not None and wix.image.url.startswith("https://static.wixstatic.com/")
    assert wix.url == server.url(WIX)  # canonical on another host is not trusted
    assert wix.slug == "ukraine-s-security-and-peace-agreement"
    # The Wix byline and bio leave the body and name the beat, like the pasted layout.
    assert wix.author_bios == (
        (
            "Iruni Kalupahana",
            "I. Kalupahana is a Jadetimes news reporter covering Russia-Ukraine war",
            "russia-ukraine-war",
        ),
    )
    assert "JadeTimes Staff" not in wix.content_html and "covering" not in wix.content_html
    assert "<h2>Ukraine’s Pre-2014 Borders</h2>" in wix.content_html
    for residue in ("Recent Posts", "Write a comment", "Proudly", "tracking", "Subscribe"):
        assert residue not in wix.content_html
    assert wix.summary.startswith("The idea of returning Ukraine")  # og:description

    wp = arts[WP]
    assert wp.authors == ("Maria Okafor",)
    assert wp.published == datetime(2025, 2, 17, 7, 30, tzinfo=UTC)
    assert wp.updated == datetime(2025, 2, 17, 11, 5, tzinfo=UTC)
    assert wp.image is not None and wp.image.url == server.url(
        "/wp-content/uploads/2025/02/strike.jpg"
    )
    assert f'href="{server.url("/2025/01/30/pay-talks-begin/")}"' in wp.content_html
    assert "onload" not in wp.content_html and "Leave a Reply" not in wp.content_html
    assert wp.language == "en-GB"

    undated = arts[UNDATED]
    assert undated.published == NOW and undated.authors == ()
    assert not undated.content_html.lstrip().startswith("<h1")  # the title is not repeated
    assert any("no date on the page" in w for w in r.warnings)


def test_author_fallback_and_fixed_beat(server: UpstreamServer, config: Config) -> None:
    r, _ = fetch(config, urls=(server.url(UNDATED),), author="Ferry Desk", beat="world")
    (a,) = r.articles
    assert a.authors == ("Ferry Desk",) and a.beat == "world"


def test_second_run_costs_one_304(server: UpstreamServer, config: Config) -> None:
    sitemap = server.url("/sitemap.xml")
    r1, ctx = fetch(config, sitemap=sitemap, url_pattern="/post/")
    hits = len(server.hits)
    r2, _ = fetch(
        config, sitemap=sitemap, url_pattern="/post/", state=ctx.state, known=known_of(r1)
    )
    assert r2.status == "not-modified" and r2.articles == []
    assert r2.unchanged_keys == {server.url(p) for p in (WIX, WP, UNDATED)}
    assert len(server.hits) == hits + 1  # the sitemap only
    assert server.hits[-1].headers["if-none-match"] == '"s1"'


def test_changed_lastmod_refetches_only_that_page(server: UpstreamServer, config: Config) -> None:
    set_sitemap(server, "sitemap.xml")  # no validators: the sitemap is read every time
    sitemap = server.url("/sitemap.xml")
    r1, ctx = fetch(config, sitemap=sitemap, url_pattern="/post/")
    known = known_of(r1)
    r2, ctx2 = fetch(config, sitemap=sitemap, url_pattern="/post/", state=ctx.state, known=known)
    assert r2.articles == [] and len(r2.unchanged_keys) == 3
    body = (DATA / "sitemap.xml").read_text().replace("{BASE}", server.url(""))
    body = body.replace("2025-02-17T11:05:00+00:00", "2025-02-19T08:00:00+00:00")
    server.route("/sitemap.xml", body=body.encode())
    before = len(server.hits_for(WP)), len(server.hits_for(WIX))
    r3, ctx3 = fetch(config, sitemap=sitemap, url_pattern="/post/", state=ctx2.state, known=known)
    assert [a.key for a in r3.articles] == [server.url(WP)]
    assert r3.unchanged_keys == {server.url(WIX), server.url(UNDATED)}
    assert (len(server.hits_for(WP)), len(server.hits_for(WIX))) == (before[0] + 1, before[1])
    assert json.loads(ctx3.state["fetched"])[server.url(WP)] == "2025-02-19T08:00:00+00:00"


def test_max_pages_per_run_leaves_the_rest_for_later(
    server: UpstreamServer, config: Config
) -> None:
    sitemap = server.url("/sitemap.xml")
    r1, ctx = fetch(config, sitemap=sitemap, url_pattern="/post/", max_pages_per_run=2)
    assert len(r1.articles) == 2 and any("1 more pages wait" in w for w in r1.warnings)
    assert ctx.state["pending"] == "1"
    # Pending pages: the sitemap is read in full (no 304) and the last page is fetched.
    r2, ctx2 = fetch(
        config, sitemap=sitemap, url_pattern="/post/", max_pages_per_run=2,
        state=ctx.state, known=known_of(r1),
    )  # fmt: skip
    assert "if-none-match" not in server.hits_for("/sitemap.xml")[-1].headers
    assert len(r2.articles) == 1 and len(r2.unchanged_keys) == 2
    assert "pending" not in ctx2.state


def test_config_change_refreshes_pages_a_few_per_run(
    server: UpstreamServer, config: Config
) -> None:
    sitemap = server.url("/sitemap.xml")
    kw: dict[str, Any] = {"sitemap": sitemap, "url_pattern": "/post/", "max_pages_per_run": 2}
    r1, ctx = fetch(config, **kw)
    r1b, ctx = fetch(config, state=ctx.state, known=known_of(r1), **kw)
    known = known_of(r1, *(a.key for a in r1b.articles))
    assert len(known) == 3
    # Beats (or any rule that shapes articles) changed: pages are extracted again.
    r2, ctx2 = fetch(config, state=ctx.state, known=known, fp="r2", **kw)
    assert len(r2.articles) == 2 and len(r2.unchanged_keys) == 1
    r3, ctx3 = fetch(config, state=ctx2.state, known=known, fp="r2", **kw)
    assert len(r3.articles) == 1 and len(r3.unchanged_keys) == 2
    assert "pending" not in ctx3.state
    r4, _ = fetch(config, state=ctx3.state, known=known, fp="r2", **kw)
    assert r4.status == "not-modified" and len(r4.unchanged_keys) == 3


def test_gzip_sitemap(server: UpstreamServer, config: Config) -> None:
    body = (DATA / "sitemap.xml").read_text().replace("{BASE}", server.url(""))
    server.route("/sitemap.xml.gz", body=gzip.compress(body.encode()),
                 content_type="application/x-gzip")  # fmt: skip
    r, _ = fetch(config, sitemap=server.url("/sitemap.xml.gz"), url_pattern="/post/")
    assert len(r.articles) == 3


def test_sitemap_index_is_followed(server: UpstreamServer, config: Config) -> None:
    set_sitemap(server, "sitemap-index.xml")
    set_sitemap(server, "sitemap.xml", path="/blog-posts-sitemap.xml")
    r, _ = fetch(config, sitemap=server.url("/sitemap.xml"), url_pattern="/post/")
    assert len(r.articles) == 3


def test_page_faults_are_reported_and_retried(server: UpstreamServer, config: Config) -> None:
    server.route(WP, status=404, body=b"nope")
    server.serve_file(UNDATED, "page-undated.html", content_type=HTML, delay=1.0)
    r1, ctx = fetch(config, sitemap=server.url("/sitemap.xml"), url_pattern="/post/", timeout=0.3)
    assert r1.status == "ok" and [a.key for a in r1.articles] == [server.url(WIX)]
    reasons = sorted(str(e) for e in r1.rejected)
    assert len(reasons) == 2
    assert any("HTTP 404" in x for x in reasons) and any("timeout" in x for x in reasons)
    assert r1.complete is False
    # Next run: the failed pages are tried again (and now work); the good one is not refetched.
    server.serve_file(WP, "page-wordpress.html", content_type=HTML)
    server.serve_file(UNDATED, "page-undated.html", content_type=HTML)
    wix_hits = len(server.hits_for(WIX))
    r2, _ = fetch(
        config, sitemap=server.url("/sitemap.xml"), url_pattern="/post/", timeout=0.3,
        state=ctx.state, known=known_of(r1),
    )  # fmt: skip
    assert {a.key for a in r2.articles} == {server.url(WP), server.url(UNDATED)}
    assert len(server.hits_for(WIX)) == wix_hits


def test_not_an_article_page(server: UpstreamServer, config: Config) -> None:
    server.route("/empty", body=b"<html><head><title>x</title></head><body></body></html>",
                 content_type=HTML)  # fmt: skip
    r, _ = fetch(config, urls=(server.url("/empty"), server.url(WIX)))
    assert len(r.articles) == 1 and len(r.rejected) == 1
    assert "/empty" in str(r.rejected[0])


def test_sitemap_410_disables_and_unreachable_is_an_error(
    server: UpstreamServer, config: Config
) -> None:
    server.route("/sitemap.xml", status=410)
    r1, ctx = fetch(config, sitemap=server.url("/sitemap.xml"))
    assert r1.status == "disabled" and "410 Gone" in (r1.error or "")
    r2, _ = fetch(config, sitemap=server.url("/sitemap.xml"), state=ctx.state)
    assert r2.status == "disabled" and len(server.hits_for("/sitemap.xml")) == 1
    r3, _ = fetch(config, sitemap="http://127.0.0.1:9/sitemap.xml", timeout=2)
    assert r3.status == "error" and "unreachable" in (r3.error or "")


def test_malformed_sitemap_uses_what_parses(server: UpstreamServer, config: Config) -> None:
    body = (DATA / "sitemap.xml").read_text().replace("{BASE}", server.url(""))
    cut = body.index("<url><loc>" + server.url(UNDATED))
    server.route("/sitemap.xml", body=(body[:cut] + "<url><loc>http://x & y").encode())
    r, _ = fetch(config, sitemap=server.url("/sitemap.xml"), retract_missing=True)
    assert {a.key for a in r.articles} == {server.url(WIX), server.url(WP)}
    assert any("ill-formed XML" in w for w in r.warnings)
    assert r.complete is False  # never retract on a partial listing


def test_politeness_per_host(server: UpstreamServer, config: Config) -> None:
    for i in range(6):
        server.serve_file(f"/p{i}", "page-undated.html", content_type=HTML, delay=0.05)
    urls = tuple(server.url(f"/p{i}") for i in range(6))
    r, _ = fetch(config, urls=urls, concurrency_per_host=1, requests_per_second=100)
    assert len(r.articles) == 6 and server.max_in_flight == 1
    server.max_in_flight = 0
    fetch(config, urls=urls, concurrency_per_host=3, requests_per_second=1000)
    assert 1 <= server.max_in_flight <= 3


def test_throttled_host_is_left_alone(server: UpstreamServer, config: Config) -> None:
    server.route("/t0", status=429, headers={"Retry-After": "120"})
    for i in range(1, 4):
        server.serve_file(f"/t{i}", "page-undated.html", content_type=HTML)
    urls = tuple(server.url(f"/t{i}") for i in range(4))
    r, _ = fetch(config, urls=urls, concurrency_per_host=1, requests_per_second=1000)
    assert r.articles == [] and len(r.rejected) == 4
    assert "retry after 120" in str(r.rejected[0])
    assert all("asked us to slow down" in str(e) for e in r.rejected[1:])
    assert all(not server.hits_for(f"/t{i}") for i in range(1, 4))


def test_plan_pages_is_pure() -> None:
    listed = [Listed("a", "1"), Listed("b", ""), Listed("c", "2"), Listed("d", "")]
    due, unchanged, waiting = plan_pages(listed, {"a", "b", "c"}, {"a": "1", "c": "1"}, limit=5)
    # b was never fetched under this configuration; d is new (first); c's lastmod moved.
    assert [p.url for p in due] == ["d", "b", "c"] and unchanged == {"a"} and waiting == 0
    fetched = {"a": "1", "b": "", "c": "1"}
    due, unchanged, waiting = plan_pages(listed, {"a", "b", "c"}, fetched, limit=1)
    assert [p.url for p in due] == ["d"] and unchanged == {"a", "b", "c"} and waiting == 1


def test_collect_end_to_end(newsroom: Newsroom, server: UpstreamServer) -> None:
    newsroom.set_config(
        f"""
        [[sources]]
        type = "pages"
        name = "jade-pages"
        sitemap = "{server.url("/sitemap.xml")}"
        url_pattern = "/post/"
        requests_per_second = 1000
        """
    )
    store = newsroom.store()
    rep = collect(newsroom.config(), store, now=NOW)
    (src,) = [s for s in rep.sources if s.name == "jade-pages"]
    assert src.status == "ok" and src.counts["new"] == 3, rep.rejected
    with store.read() as conn:
        stored = {a.title: a for a in store.load_articles(conn)}
    assert stored["Ukraine’s Security and Peace Agreement"].beat == "russia-ukraine-war"
    rep2 = collect(newsroom.config(), store, now=NOW + timedelta(minutes=5))
    (src2,) = [s for s in rep2.sources if s.name == "jade-pages"]
    assert src2.status == "not-modified" and src2.counts["unchanged"] == 3
    assert not rep2.changed
    store.close()


def test_http_charset_wins_over_guessing(server: UpstreamServer, config: Config) -> None:
    text = "Длинный текст статьи о переговорах в Киеве и Москве. " * 15
    page = f"<html><head><title>Переговоры</title></head><body><article><h1>Переговоры</h1><p>{text}</p></article></body></html>"
    server.route("/ru", body=page.encode("cp1251"), content_type="text/html; charset=windows-1251")
    r, _ = fetch(config, urls=(server.url("/ru"),))
    (a,) = r.articles
    assert a.title == "Переговоры" and "переговорах в Киеве" in a.content_html
    assert a.slug == "ru"  # the URL's last segment
