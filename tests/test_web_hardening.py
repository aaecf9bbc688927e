"""``feedpub serve`` against hostile and careless clients: a real server on 127.0.0.1.

Before: an ``index.html`` symlinked out of the feeds folder was served; the listen backlog
was 5; every idle (slowloris) connection held a thread; a slow body got a 500 and a
traceback; ``Server:`` told the CPython version; timed-out clients printed raw tracebacks
outside the structured log; no gzip, no keep-alive.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import socket
import threading
import time
import wsgiref.simple_server
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from feedpub.clock import running_from
from feedpub.config import Config
from feedpub.feeds import build_feeds
from feedpub.store import Store
from feedpub.web.server import Server, adjustments, make_server
from tests.conftest import LogRecords, Newsroom
from tests.test_digest_support import NOW, article, hours_ago, put


@dataclass
class Served:
    config: Config
    server: Server
    port: int
    log: LogRecords

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def get(self, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
        c = self.conn()
        try:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            return r, r.read()
        finally:
            c.close()


@pytest.fixture
def served(newsroom: Newsroom) -> Iterator[Served]:
    newsroom.set_config("[web]\nrequest_timeout = 1\nthreads = 4\n")
    config = newsroom.config()
    store = Store(config.store_url)
    put(store, *(article(i, "world", hours_ago(i + 1)) for i in range(5)))
    build_feeds(config, store, now=NOW, ping=False)
    records = LogRecords()
    logger = logging.getLogger("feedpub.web")
    old = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    server = make_server(config, store, "127.0.0.1", 0, clock=running_from(NOW))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(config, server, server.server_port, records)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        store.close()
        logger.removeHandler(records)
        logger.setLevel(old)


def test_an_index_html_symlinked_out_of_the_folder_is_refused(
    served: Served, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.html"
    secret.parent.mkdir()
    secret.write_text("<p>not for the web</p>", encoding="utf-8")
    sub = served.config.output_dir / "sub"
    sub.mkdir()
    (sub / "index.html").symlink_to(secret)
    for path in ("/sub/", "/sub/index.html"):
        r, body = served.get(path)
        assert r.status == 404, path
        assert b"not for the web" not in body
    # A symlink that stays inside the folder still works.
    (sub / "index.html").unlink()
    (sub / "index.html").symlink_to(served.config.output_dir / "index.html")
    assert served.get("/sub/")[0].status == 200


def test_proxy_headers_reach_the_application(newsroom: Newsroom) -> None:
    """waitress strips X-Forwarded-For without a trusted proxy; the app decides instead
    (``[signup] client_ip_header``), so the header must reach it."""
    seen: list[str] = []

    def spy(environ, start_response):  # type: ignore[no-untyped-def]
        seen.append(environ.get("HTTP_X_FORWARDED_FOR", ""))
        start_response("204 No Content", [])
        return []

    server = Server(spy, adjustments(newsroom.config().web, "127.0.0.1", 0), 5.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        c.request("GET", "/", headers={"X-Forwarded-For": "203.0.113.7"})
        assert c.getresponse().status == 204
        c.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert seen == ["203.0.113.7"]


def test_server_header_names_no_python_version_and_connections_are_kept_alive(
    served: Served,
) -> None:
    c = served.conn()
    try:
        c.request("GET", "/rss.xml")
        first = c.getresponse()
        first.read()
        sock = c.sock
        for _ in range(3):  # the same connection answers again (HTTP/1.1 keep-alive)
            c.request("GET", "/atom.xml")
            r = c.getresponse()
            r.read()
            assert r.status == 200
            assert c.sock is sock
    finally:
        c.close()
    assert first.version == 11
    assert first.getheader("Server") == "feedpub"


def test_feeds_are_gzipped_for_clients_that_accept_it_with_their_own_etag(
    served: Served,
) -> None:
    on_disk = (served.config.output_dir / "rss.xml").read_bytes()
    plain, plain_body = served.get("/rss.xml", **{"Accept-Encoding": "identity"})
    packed, packed_body = served.get("/rss.xml", **{"Accept-Encoding": "br;q=1, gzip;q=0.8"})
    assert plain_body == on_disk and plain.getheader("Content-Encoding") is None
    assert packed.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(packed_body) == on_disk
    assert len(packed_body) < len(on_disk)
    assert int(packed.getheader("Content-Length") or 0) == len(packed_body)
    assert plain.getheader("Vary") == packed.getheader("Vary") == "Accept-Encoding"
    etag, gz_etag = plain.getheader("ETag"), packed.getheader("ETag")
    assert etag and gz_etag and etag != gz_etag  # two representations, two strong ETags
    for tag in (etag, gz_etag):  # either validates the same version
        r, _ = served.get("/rss.xml", **{"Accept-Encoding": "gzip", "If-None-Match": tag})
        assert r.status == 304
    refused, body = served.get("/rss.xml", **{"Accept-Encoding": "gzip;q=0"})
    assert refused.getheader("Content-Encoding") is None and body == on_disk


def test_a_slow_body_is_read_before_the_app_runs_and_gets_no_500(served: Served) -> None:
    body = b"List-Unsubscribe=One-Click"
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
        s.sendall(
            b"POST /unsubscribe?t=bad HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        for i in range(0, len(body), 8):  # a body that trickles in
            s.sendall(body[i : i + 8])
            time.sleep(0.1)
        reply = s.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 400 ")  # the invalid token's answer, not a 500
    assert not any(r.exc_info for r in served.log.records)


def test_a_client_that_never_finishes_its_request_is_disconnected_and_logged(
    served: Served, capfd: pytest.CaptureFixture[str]
) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as s:
        s.sendall(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 8:  # trickle a header line every 0.3 s: never idle
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            s.settimeout(0.3)
            try:
                if s.recv(1024) == b"":
                    break
            except TimeoutError:
                pass
        else:
            pytest.fail("the trickling client was never disconnected")
    slow = [r for r in served.log.records if r.getMessage().startswith("client too slow")]
    assert len(slow) == 1 and not slow[0].exc_info
    assert "Traceback" not in capfd.readouterr().err


def test_idle_connections_hold_no_threads_and_others_are_still_served(served: Served) -> None:
    before = threading.active_count()
    idle = []
    try:
        for _ in range(300):  # half-sent requests: a slowloris
            s = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            s.sendall(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n")
            idle.append(s)
        time.sleep(0.3)
        assert threading.active_count() <= before + 1  # no thread per connection
        r, _ = served.get("/rss.xml")
        assert r.status == 200
    finally:
        for s in idle:
            s.close()


def test_the_wsgi_entry_point_is_a_plain_wsgi_app(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedpub import wsgi

    config = newsroom.config()
    store = Store(config.store_url)
    put(store, article(1, "world", hours_ago(1)))
    build_feeds(config, store, now=NOW, ping=False)
    store.close()
    monkeypatch.setenv("FEEDPUB_CONFIG", str(newsroom.config_path))
    monkeypatch.setattr(wsgi, "_app", None)
    httpd = wsgiref.simple_server.make_server("127.0.0.1", 0, wsgi.application)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", httpd.server_port, timeout=10)
        c.request("GET", "/rss.xml")
        r = c.getresponse()
        assert r.status == 200 and r.read() == (config.output_dir / "rss.xml").read_bytes()
        c.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
