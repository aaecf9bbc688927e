"""WebSub publish pings against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer

from feedpub.collect import collect
from feedpub.feeds import build_feeds
from feedpub.feeds.websub import ping
from tests.conftest import BASE_CONFIG, Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STORY = """\
---
title: Story
author: Arjun Mehta
date: 2026-11-20 09:00
beat: technology
---

Body.
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _posts(httpserver: HTTPServer) -> list[dict[str, list[str]]]:
    return [parse_qs(req.get_data(as_text=True)) for req, _ in httpserver.log]


def test_build_pings_hub_for_each_changed_feed(newsroom: Newsroom, httpserver: HTTPServer) -> None:
    hub = httpserver.url_for("/hub")
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    newsroom.config_path.write_text(
        BASE_CONFIG.replace(
            'default_beat = "world"', f'default_beat = "world"\nwebsub_hub = "{hub}"'
        ),
        encoding="utf-8",
    )
    newsroom.write("a.md", STORY)
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=NOW)
    rep = build_feeds(cfg, store, now=NOW)
    assert rep.ping is not None and rep.ping.failed == []
    posts = _posts(httpserver)
    assert all(p["hub.mode"] == ["publish"] for p in posts)
    topics = sorted(p["hub.url"][0] for p in posts)
    assert "https://news.example/atom.xml" in topics
    assert "https://news.example/beats/technology/rss.xml" in topics
    assert topics == sorted(rep.changed_feeds)
    # Nothing changed: no build, no ping.
    httpserver.clear_log()
    assert build_feeds(cfg, store, now=NOW).skipped
    assert _posts(httpserver) == []
    # The hub link is in the feeds themselves.
    assert f'href="{hub}"' in (cfg.output_dir / "atom.xml").read_text()
    store.close()


def test_ping_retries_with_backoff(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/hub", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hub", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hub", method="POST").respond_with_data("", status=204)
    sleeps: list[float] = []
    rep = ping(httpserver.url_for("/hub"), ["https://n.example/atom.xml"], sleep=sleeps.append)
    assert rep.ok == ["https://n.example/atom.xml"] and rep.failed == []
    assert sleeps == [0.5, 1.0]
    assert len(httpserver.log) == 3


def test_hub_refusal_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("no", status=400)
    rep = ping(
        httpserver.url_for("/hub"),
        ["https://n.example/a", "https://n.example/b"],
        sleep=lambda s: None,
    )
    assert rep.failed == ["https://n.example/a", "https://n.example/b"]
    assert len(httpserver.log) == 2  # one request per topic, no retries on 4xx


def test_unreachable_hub_never_fails_the_build(newsroom: Newsroom) -> None:
    hub = f"http://127.0.0.1:{_free_port()}/hub"
    newsroom.config_path.write_text(
        BASE_CONFIG.replace(
            'default_beat = "world"', f'default_beat = "world"\nwebsub_hub = "{hub}"'
        ),
        encoding="utf-8",
    )
    newsroom.write("a.md", STORY)
    cfg = newsroom.config()
    store = newsroom.store()
    collect(cfg, store, now=NOW)
    rep = build_feeds(cfg, store, now=NOW)
    assert rep.ping is not None and rep.ping.ok == []
    assert sorted(rep.ping.failed) == sorted(
        rep.changed_feeds
    )  # all reported, none retried forever
    assert (cfg.output_dir / "atom.xml").is_file()
    assert build_feeds(cfg, store, now=NOW).skipped  # the build itself was recorded
    store.close()
