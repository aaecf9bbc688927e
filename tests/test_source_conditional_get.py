"""Conditional GET across polls of the upstream sources (feed and pages): a 304 stands
only for the last answer that was read in full. An answer that was no feed (a maintenance
page with an ETag) stays an error on the next poll; the pages of a child sitemap that
failed are asked for again though the index itself did not change.

(Conditional GET itself, per source: test_source_feed.py, test_source_pages.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedpub.collect import collect
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 7, 5, tzinfo=UTC)

# The upstream "gazette": one article.
RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>G</title>'
    b"<link>https://gazette.example/</link><description>d</description>"
    b"<item><guid>g-1</guid><title>One</title><link>https://gazette.example/1</link>"
    b"<description>&lt;p&gt;Body one.&lt;/p&gt;</description>"
    b"<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"
)


def test_a_broken_upstream_answer_stays_an_error_on_the_next_poll(newsroom: Newsroom) -> None:
    # The CMS serves a maintenance page (with an ETag) instead of its feed: the first poll
    # reported the error, then feedpub sent that page's ETag back, got 304 and reported
    # "not-modified" (all fine) for as long as the page stayed up.
    from tests.upstream_http import UpstreamServer

    server = UpstreamServer().start()
    try:
        newsroom.set_config(
            f'[[sources]]\ntype = "feed"\nname = "gazette"\nurl = "{server.url("/feed")}"\n'
        )
        cfg = newsroom.config()
        store = newsroom.store()
        server.route("/feed", body=RSS, etag='"feed-1"')
        first = collect(cfg, store, now=NOW)
        assert first.counts["new"] == 1
        server.route(
            "/feed", body=b"<html><body>Down for maintenance</body></html>",
            content_type="text/html", etag='"maintenance"',
        )  # fmt: skip
        statuses = []
        for i in range(2):
            report = collect(cfg, store, now=NOW + timedelta(minutes=i + 1))
            statuses.append({s.name: s.status for s in report.sources}["gazette"])
        store.close()
    finally:
        server.stop()
    assert statuses == ["error", "error"]


def test_pages_of_a_child_sitemap_that_failed_are_found_on_the_next_poll(
    newsroom: Newsroom,
) -> None:
    # A sitemap index whose second child answered 500 once: the index itself did not
    # change, so the next poll got a 304 for it and never asked for that child again.
    from tests.upstream_http import UpstreamServer

    html = "text/html; charset=utf-8"
    server = UpstreamServer().start()
    try:
        base = server.url("")
        server.serve_file("/post/a", "page-wordpress.html", content_type=html)
        server.serve_file("/post/b", "page-wix.html", content_type=html)
        index = (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
            f'sitemap/0.9"><sitemap><loc>{base}/s1.xml</loc></sitemap>'
            f"<sitemap><loc>{base}/s2.xml</loc></sitemap></sitemapindex>"
        )
        server.route("/index.xml", body=index.encode(), etag='"i1"')

        def urlset(path: str) -> bytes:
            return (
                '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                f'sitemap/0.9"><url><loc>{base}{path}</loc></url></urlset>'
            ).encode()

        server.route("/s1.xml", body=urlset("/post/a"))
        server.route("/s2.xml", status=500, body=b"oops")
        newsroom.set_config(
            f'[[sources]]\ntype = "pages"\nname = "site"\nsitemap = "{base}/index.xml"\n'
            "requests_per_second = 1000\n"
        )
        cfg = newsroom.config()
        store = newsroom.store()
        first = collect(cfg, store, now=NOW)
        server.route("/s2.xml", body=urlset("/post/b"))
        second = collect(cfg, store, now=NOW + timedelta(minutes=5))
        store.close()
    finally:
        server.stop()
    assert first.counts["new"] == 1
    assert second.counts["new"] == 1, [(s.name, s.status, s.warnings) for s in second.sources]
