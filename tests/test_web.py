"""feedpub serve: a real threaded server on 127.0.0.1, real SQLite, real feeds on disk."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from click.testing import CliRunner
from lxml import html as lxml_html

from feedpub.cli import main
from feedpub.clock import running_from
from feedpub.config import Config
from feedpub.digest import subscribers as subs
from feedpub.digest.tokens import PREFERENCES, UNSUBSCRIBE, LinkMaker, Tokens, tokens_for
from feedpub.feeds import build_feeds
from feedpub.store import Store
from feedpub.web.app import WebApp, parse_form
from feedpub.web.server import make_server, redact
from feedpub.web.static import not_modified, safe_segments
from tests.conftest import Newsroom
from tests.test_digest_support import NOW, article, hours_ago, put, subscribe


@dataclass
class Site:
    config: Config
    store: Store
    base: str  # http://127.0.0.1:PORT
    client: httpx.Client
    links: LinkMaker

    def local(self, url: str) -> str:
        """A link as the digest prints it, pointed at the test server."""
        parts = urlsplit(url)
        return f"{self.base}{parts.path}?{parts.query}"

    def subscription(self, sid: int) -> subs.SubscriberRow:
        with self.store.read() as conn:
            row = subs.subscription_by_id(conn, sid, "daily")
        assert row is not None
        return row


@pytest.fixture
def site(newsroom: Newsroom) -> Iterator[Site]:
    config = newsroom.config()
    store = Store(config.store_url)
    put(
        store,
        article(1, "technology", hours_ago(3)),
        article(2, "world", hours_ago(2), title="Second & last"),
    )
    build_feeds(config, store, now=NOW, ping=False)
    server = make_server(config, store, "127.0.0.1", 0, clock=running_from(NOW))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as client:
            yield Site(config, store, base, client, LinkMaker(config, "daily", tokens_for(config)))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        store.close()


def _header_url(site: Site, sid: int) -> str:
    """The https URL of the List-Unsubscribe header the digest writes."""
    value = site.links.list_unsubscribe(sid)
    return value[1 : value.index(">")]


def _raw_get(site: Site, target: str, method: str = "GET") -> int:
    """A request target sent byte for byte (httpx would normalize dot segments)."""
    port = int(site.base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


# ---- unsubscribe ------------------------------------------------------------------------


def test_one_click_post_unsubscribes_without_cookie_or_redirect(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com")
    other = subscribe(site.config, site.store, "bob@example.com")
    url = _header_url(site, sid)
    assert url.startswith("https://news.example/unsubscribe?t=")

    r = site.client.post(
        site.local(url),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert "location" not in r.headers
    assert site.subscription(sid).subscription_status == "unsubscribed"
    assert site.subscription(other).subscription_status == "active"
    with site.store.read() as conn:
        assert [e for _, e, _ in subs.active_recipients(conn, "daily")] == ["bob@example.com"]

    # Again: same answer, still unsubscribed (a retrying mail provider).
    r = site.client.post(site.local(url), content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 200


def test_concurrent_one_click_posts_all_land(site: Site) -> None:
    """The threaded server and SQLite: simultaneous unsubscribes all commit."""
    from concurrent.futures import ThreadPoolExecutor

    ids = [subscribe(site.config, site.store, f"reader{i}@example.com") for i in range(16)]
    keep = subscribe(site.config, site.store, "stays@example.com")

    def post(sid: int) -> int:
        url = site.local(site.links.unsubscribe_url(sid))
        with httpx.Client(timeout=30) as c:
            return c.post(url, content=b"List-Unsubscribe=One-Click").status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(post, ids)) == [200] * len(ids)
    with site.store.read() as conn:
        assert subs.active_recipients(conn, "daily") == [(keep, "stays@example.com", ())]


def test_one_click_post_as_multipart_form_data(site: Site) -> None:
    """RFC 8058 §3.1: the POST SHOULD be multipart/form-data."""
    sid = subscribe(site.config, site.store, "ann@example.com")
    r = site.client.post(
        site.local(site.links.unsubscribe_url(sid)),
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert site.subscription(sid).subscription_status == "unsubscribed"


def test_get_shows_a_form_and_changes_nothing(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com")
    url = site.local(site.links.unsubscribe_url(sid))
    for _ in range(2):  # a mail scanner prefetching twice
        r = site.client.get(url)
        assert r.status_code == 200
    assert site.client.head(url).status_code == 200
    assert site.subscription(sid).subscription_status == "active"
    assert "set-cookie" not in r.headers
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"

    doc = lxml_html.fromstring(r.text)
    (form,) = doc.xpath("//form")
    assert form.get("method") == "post"
    assert "Test Daily" in doc.text_content()
    # The form posts back to the same URL with the same token.
    action = form.get("action")
    target = httpx.URL(url).join(action)
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
    r = site.client.post(target, data=fields)
    assert r.status_code == 200
    assert "you are unsubscribed" in r.text.lower()
    assert site.subscription(sid).subscription_status == "unsubscribed"
    # The re-subscribe hint links to this subscriber's preferences page.
    (prefs,) = lxml_html.fromstring(r.text).xpath("//a[contains(@href, 'preferences')]/@href")
    assert prefs == site.links.preferences_url(sid)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # altered mac
        lambda t: "9" + t,  # another subscriber id, same mac
        lambda t: t.replace(".daily.", ".weekly."),  # another newsletter
        lambda t: t.rsplit(".", 1)[0],  # truncated by a mail program
        lambda t: "",
    ],
)
def test_tampered_token_is_refused_and_changes_nothing(site: Site, mangle: object) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com")
    token = site.links.tokens.make(UNSUBSCRIBE, sid, "daily")
    assert callable(mangle)
    bad = mangle(token)
    url = f"/unsubscribe?t={bad}"
    r = site.client.post(url, content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 400
    assert "invalid" in r.text
    assert "ann@example.com" not in r.text
    assert site.client.get(url).status_code == 400
    assert site.subscription(sid).subscription_status == "active"


def test_invalid_token_answer_is_the_same_for_unknown_subscribers(site: Site) -> None:
    """Never reveal whether an address exists: a forged token for a real subscriber and
    for a non-existent one get the same bytes; a genuine token for nobody gets 200."""
    sid = subscribe(site.config, site.store, "ann@example.com")
    a = site.client.post(f"/unsubscribe?t={sid}.daily.AAAAAAAAAAAAAAAAAAAAAA")
    b = site.client.post("/unsubscribe?t=999.daily.AAAAAAAAAAAAAAAAAAAAAA")
    assert (a.status_code, a.content) == (b.status_code, b.content)
    ghost = site.links.unsubscribe_url(999)
    r = site.client.post(site.local(ghost), content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 200


def test_preferences_token_does_not_unsubscribe(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com")
    prefs_token = site.links.tokens.make(PREFERENCES, sid, "daily")
    r = site.client.post(f"/unsubscribe?t={prefs_token}", content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 400
    assert site.subscription(sid).subscription_status == "active"


def test_one_click_with_non_ascii_token_gets_400(newsroom: Newsroom) -> None:
    import io

    cfg = newsroom.config()
    app = WebApp(cfg, newsroom.store(), tokens=Tokens(b"k"), clock=running_from(NOW))
    body = b"List-Unsubscribe=One-Click"
    for raw in ("%C2%B2.daily.abc", "1.daily.%C3%80bc"):
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/unsubscribe",
            "QUERY_STRING": f"t={raw}",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        app(environ, lambda s, h, status=status: status.append(s))
        assert status[0].startswith("400"), raw


# ---- preferences ------------------------------------------------------------------------


def _checked(page: str) -> dict[str, bool]:
    doc = lxml_html.fromstring(page)
    return {
        i.get("value"): i.get("checked") is not None
        for i in doc.xpath("//input[@type='checkbox'][@name='beat']")
    }


def test_preferences_round_trip(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com", beats="technology")
    url = site.local(site.links.preferences_url(sid))
    r = site.client.get(url)
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert _checked(r.text) == {"russia-ukraine-war": False, "technology": True, "world": False}

    r = site.client.post(url, data={"beat": ["world", "russia-ukraine-war"]})
    assert r.status_code == 200
    assert "Saved" in r.text
    # Stored in the newsletter's configured order.
    assert site.subscription(sid).beats == ("russia-ukraine-war", "world")
    assert _checked(site.client.get(url).text) == {
        "russia-ukraine-war": True,
        "technology": False,
        "world": True,
    }

    # Nothing ticked = every beat (stored empty), shown all ticked.
    r = site.client.post(
        url, content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200
    assert site.subscription(sid).beats == ()
    assert all(_checked(r.text).values())
    # All ticked also means all (new beats included later).
    site.client.post(url, data={"beat": ["world", "technology", "russia-ukraine-war"]})
    assert site.subscription(sid).beats == ()
    with site.store.read() as conn:
        assert subs.active_recipients(conn, "daily") == [(sid, "ann@example.com", ())]


def test_preferences_reject_unknown_beat_and_bad_token(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com", beats="technology")
    url = site.local(site.links.preferences_url(sid))
    r = site.client.post(url, data={"beat": ["sports"]})
    assert r.status_code == 400
    # In readers' words, in the page (test_web_preferences_topics.py pins the wording).
    assert "no longer offered by Test Daily" in r.text and "sports" not in r.text
    assert site.subscription(sid).beats == ("technology",)
    # An unsubscribe token is not a preferences token.
    unsub = site.links.tokens.make(UNSUBSCRIBE, sid, "daily")
    assert site.client.get(f"/preferences?t={unsub}").status_code == 400
    assert site.client.post(f"/preferences?t={unsub}", data={"beat": "world"}).status_code == 400
    assert site.subscription(sid).beats == ("technology",)


def test_preferences_resubscribe_after_unsubscribe(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com")
    site.client.post(
        site.local(site.links.unsubscribe_url(sid)), content=b"List-Unsubscribe=One-Click"
    )
    url = site.local(site.links.preferences_url(sid))
    r = site.client.get(url)
    doc = lxml_html.fromstring(r.text)
    assert "not subscribed" in doc.text_content()
    fields = [(i.get("name"), i.get("value")) for i in doc.xpath("//form//input[@type='hidden']")]
    assert fields == [("resubscribe", "1")]
    r = site.client.post(url, data={"beat": ["world"], "resubscribe": "1"})
    assert r.status_code == 200
    row = site.subscription(sid)
    assert (row.subscription_status, row.beats) == ("active", ("world",))


def test_preferences_of_purged_subscriber_or_dropped_newsletter(site: Site) -> None:
    sid = subscribe(site.config, site.store, "ann@example.com")
    with site.store.begin() as conn:
        subs.remove(conn, "ann@example.com", newsletter=None, now=NOW, purge=True)
    url = site.local(site.links.preferences_url(sid))
    assert site.client.get(url).status_code == 404
    assert site.client.post(url, data={"beat": "world"}).status_code == 404
    gone = site.links.tokens.make(PREFERENCES, sid, "weekly")  # genuine, not configured
    r = site.client.get(f"/preferences?t={gone}")
    assert r.status_code == 404
    assert "no longer published" in r.text


def test_page_escapes_configured_text(newsroom: Newsroom) -> None:
    """Titles are escaped, never interpreted as HTML."""
    from feedpub.web.app import WebApp

    newsroom.set_config(
        base=newsroom.config_path.read_text().replace(
            'title = "Test Daily"', 'title = "<b>Daily</b>"'
        )
    )
    config = newsroom.config()
    store = Store(config.store_url)
    try:
        sid = subscribe(config, store, "ann@example.com")
        app = WebApp(config, store, clock=running_from(NOW))
        token = app.tokens.make(UNSUBSCRIBE, sid, "daily")
        out: list[str] = []
        body = b"".join(
            app(
                {
                    "REQUEST_METHOD": "GET",
                    "PATH_INFO": "/unsubscribe",
                    "QUERY_STRING": f"t={token}",
                },
                lambda status, headers: out.append(status),
            )
        )
    finally:
        store.close()
    assert out == ["200 OK"]
    assert b"&lt;b&gt;Daily&lt;/b&gt;" in body and b"<b>Daily" not in body


# ---- static feeds -----------------------------------------------------------------------


def test_static_feed_types_and_content(site: Site) -> None:
    expected = {
        "/rss.xml": "application/rss+xml",
        "/atom.xml": "application/atom+xml",
        "/feed.json": "application/feed+json",
        "/feeds.opml": "text/x-opml",
        "/": "text/html",
        "/index.html": "text/html",
        "/beats/technology/rss.xml": "application/rss+xml",
    }
    for path, ctype in expected.items():
        r = site.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].split(";")[0] == ctype, path
        assert "set-cookie" not in r.headers
    disk = (site.config.output_dir / "rss.xml").read_bytes()
    r = site.client.get("/rss.xml")
    assert r.content == disk
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo
    assert [e.title for e in parsed.entries] == ["Second & last", "Story number 1"]
    # A folder without its slash is redirected to it.
    r = site.client.get("/beats/technology")
    assert r.status_code == 301
    assert r.headers["location"] == "/beats/technology/"
    # Never a protocol-relative Location (an open redirect to another host).
    for target in ("//beats", "/%2Fbeats", "//beats//technology"):
        r = site.client.get(site.base + target)
        assert r.status_code == 301, target
        assert r.headers["location"] in ("/beats/", "/beats/technology/"), target


def test_etag_revalidation_gives_304_and_changes_with_content(site: Site) -> None:
    r = site.client.get("/atom.xml")
    etag = r.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    r2 = site.client.get("/atom.xml", headers={"If-None-Match": etag})
    assert r2.status_code == 304
    assert r2.content == b""
    assert r2.headers["etag"] == etag
    # Weak comparison and lists (RFC 9110 §13.1.2).
    assert (
        site.client.get("/atom.xml", headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    )
    assert site.client.get("/atom.xml", headers={"If-None-Match": '"other"'}).status_code == 200

    # A rebuild that writes the same bytes keeps the ETag; new content changes it.
    build_feeds(site.config, site.store, now=NOW, force=True, ping=False)
    assert site.client.get("/atom.xml", headers={"If-None-Match": etag}).status_code == 304
    put(site.store, article(3, "world", hours_ago(1), title="Third"))
    with site.store.begin() as conn:
        Store.bump_generation(conn)  # as collect does with every content change
    build_feeds(site.config, site.store, now=NOW, ping=False)
    r3 = site.client.get("/atom.xml", headers={"If-None-Match": etag})
    assert r3.status_code == 200
    assert r3.headers["etag"] != etag
    assert "Third" in r3.text


def test_last_modified_revalidation(site: Site) -> None:
    r = site.client.get("/feed.json")
    lm = r.headers["last-modified"]
    assert lm.endswith("GMT")
    mtime = (site.config.output_dir / "feed.json").stat().st_mtime
    assert parsedate_to_datetime(lm) == datetime.fromtimestamp(int(mtime), UTC)
    assert site.client.get("/feed.json", headers={"If-Modified-Since": lm}).status_code == 304
    older = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert site.client.get("/feed.json", headers={"If-Modified-Since": older}).status_code == 200
    # A wrong ETag wins over a matching date (RFC 9110 §13.2.2).
    r = site.client.get("/feed.json", headers={"If-Modified-Since": lm, "If-None-Match": '"x"'})
    assert r.status_code == 200
    assert (
        site.client.get("/feed.json", headers={"If-Modified-Since": "garbage"}).status_code == 200
    )


def test_head_sends_headers_only(site: Site) -> None:
    size = (site.config.output_dir / "rss.xml").stat().st_size
    r = site.client.head("/rss.xml", headers={"Accept-Encoding": "identity"})  # not gzip
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["content-length"]) == size
    plain = site.client.get("/rss.xml", headers={"Accept-Encoding": "identity"})
    assert r.headers["etag"] == plain.headers["etag"]
    assert site.client.post("/rss.xml").status_code == 405


@pytest.mark.parametrize(
    "target",
    [
        "/../config.toml",
        "/beats/../../config.toml",
        "/%2e%2e/config.toml",
        "/%2E%2E%2Fconfig.toml",
        "/beats/%2e%2e/%2e%2e/feedpub.db",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/..%5cconfig.toml",
        "/rss.xml%00.html",
        "/.rss.xml.tmp",
    ],
)
def test_traversal_attempts_are_refused(site: Site, target: str) -> None:
    assert (site.config.output_dir.parent / "config.toml").exists()
    assert _raw_get(site, "/beats/technology/rss.xml") == 200  # the raw client works
    assert _raw_get(site, target) in (400, 404)
    assert _raw_get(site, target, "HEAD") in (400, 404)


def test_symlink_out_of_the_folder_is_refused(site: Site) -> None:
    (site.config.output_dir / "leak.xml").symlink_to(site.config.output_dir.parent / "config.toml")
    assert site.client.get("/leak.xml").status_code == 404


def test_unknown_paths(site: Site) -> None:
    assert site.client.get("/nope.xml").status_code == 404
    assert site.client.put("/unsubscribe").status_code == 405


def test_set_beats_by_id_purged_and_bounced(newsroom: Newsroom) -> None:
    import sqlalchemy as sa

    from feedpub import schema as s

    config = newsroom.config()
    store = Store(config.store_url)
    try:
        ann = subscribe(config, store, "ann@example.com", beats="world")
        bob = subscribe(config, store, "bob@example.com")
        with store.begin() as conn:
            subs.remove(conn, "ann@example.com", newsletter=None, now=NOW, purge=True)
            conn.execute(
                sa.update(s.subscribers).where(s.subscribers.c.id == bob).values(status="bounced")
            )
            conn.execute(
                sa.update(s.subscriptions)
                .where(s.subscriptions.c.subscriber_id == bob)
                .values(status="unsubscribed")
            )
        with store.begin() as conn:
            assert not subs.set_beats_by_id(conn, ann, "daily", ("world",), NOW, resubscribe=True)
            assert subs.subscription_by_id(conn, ann, "daily") is None
            assert subs.set_beats_by_id(conn, bob, "daily", ("technology",), NOW, resubscribe=True)
            row = subs.subscription_by_id(conn, bob, "daily")
            assert row is not None
            # The subscription is active again but a bounced address stays bounced.
            assert (row.status, row.subscription_status, row.beats) == (
                "bounced",
                "active",
                ("technology",),
            )
            assert subs.active_recipients(conn, "daily") == []
    finally:
        store.close()


# ---- pure parts ---------------------------------------------------------------------


def test_not_modified_decider() -> None:
    t = datetime(2026, 11, 26, 7, 0, 0, 500_000, tzinfo=UTC)
    lm = format_datetime(t.replace(microsecond=0), usegmt=True)
    assert not_modified("GET", '"a"', None, '"a"', t)
    assert not_modified("HEAD", "*", None, '"a"', t)
    assert not not_modified("POST", '"a"', None, '"a"', t)
    assert not_modified("GET", None, lm, '"a"', t)
    assert not not_modified("GET", None, "Thu, 26 Nov 2026 06:59:59 GMT", '"a"', t)
    assert not not_modified("GET", None, None, '"a"', t)


def test_safe_segments() -> None:
    assert safe_segments("beats/tech/rss.xml") == ["beats", "tech", "rss.xml"]
    assert safe_segments("//a//b/") == ["a", "b"]
    for bad in ("..", "a/../b", "./a", "a/.hidden", "a\\..\\b", "c:/x", "a\x00b"):
        assert safe_segments(bad) is None, bad


def test_parse_form_encodings() -> None:
    assert (
        parse_form("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click").get(
            "List-Unsubscribe"
        )
        == "One-Click"
    )
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--XX--\r\n"
    )
    assert (
        parse_form("multipart/form-data; boundary=XX", body).get("List-Unsubscribe") == "One-Click"
    )
    assert parse_form("text/plain", b"x=y").fields == {}


def test_access_log_hides_tokens() -> None:
    assert redact('"POST /unsubscribe?t=1.daily.SECRET HTTP/1.1" 200') == (
        '"POST /unsubscribe?… HTTP/1.1" 200'
    )


def test_serve_refuses_to_start_without_token_key(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDPUB_TEST_SECRET")
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "serve", "--port", "0"])
    assert r.exit_code == 2
    assert "FEEDPUB_TEST_SECRET" in r.stderr


def test_serve_command_runs_and_stops_on_sigterm(newsroom: Newsroom) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    config = newsroom.config()
    out = config.output_dir
    out.mkdir()
    (out / "rss.xml").write_bytes(b"<rss version='2.0'><channel/></rss>")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "feedpub",
            "--config",
            str(newsroom.config_path),
            "serve",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FEEDPUB_TEST_SECRET": "test-secret-key"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        r = httpx.get(f"http://127.0.0.1:{m.group(1)}/rss.xml", timeout=10)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/rss+xml")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
