"""Upstream-feed benchmark: 50 upstream feeds of 100 items each on a local HTTP server.

Prints the first collect (every item parsed, sanitized and stored) and a no-change poll
(target <= 1 s for all 50 with conditional GET: one 304 each), plus a poll of servers
that send no validators (the body is fetched again but not re-parsed).

    .venv/bin/python bench/sources.py [--feeds 50] [--items 100]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.upstream_http (the same server the tests use)

from _corpus import WORDS  # noqa: E402  (bench/ is on sys.path when a script runs)
from tests.upstream_http import UpstreamServer  # noqa: E402

from feedpub.collect import collect  # noqa: E402
from feedpub.config import Config, parse_config  # noqa: E402
from feedpub.store import Store  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def wordpress_feed(n: int, items: int, rng: random.Random) -> bytes:
    """A WordPress-shaped RSS 2.0 feed: content:encoded, dc:creator, categories, guid ?p=."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Upstream {n}</title><link>https://up{n}.example/</link>"
        "<description>bench</description><language>en-US</language>"
    ]
    for i in range(items):
        date = START + timedelta(minutes=53 * i + n)
        title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize()
        paras = "".join(
            "<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 80))) + ".</p>"
            for _ in range(rng.randint(3, 6))
        )
        body = (
            f'{paras}<figure><img src="/wp-content/uploads/{i}.jpg" alt="x"></figure>'
            f'<p><a href="../other-{i}/" onclick="t()">more</a></p>'
        )
        out.append(
            f"<item><title>{title} {n}-{i}</title>"
            f"<link>https://up{n}.example/{date:%Y/%m/%d}/post-{i}/</link>"
            f"<dc:creator><![CDATA[Author {i % 13}]]></dc:creator>"
            f"<pubDate>{format_datetime(date)}</pubDate>"
            f"<category><![CDATA[t{i % 20}]]></category>"
            f'<guid isPermaLink="false">https://up{n}.example/?p={1000 + i}</guid>'
            f"<description><![CDATA[<p>{title} summary [&#8230;]</p>]]></description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode()


def make_config(root: Path, server: UpstreamServer, feeds: int) -> Config:
    return parse_config(
        {
            "site": {"title": "Bench", "base_url": "https://bench.example/", "timezone": "UTC"},
            "store": {"url": "sqlite:///feedpub.db"},
            "beats": [
                {"slug": f"beat-{b}", "title": f"Beat {b}", "tags": [f"t{b}"]} for b in range(20)
            ],
            "sources": [
                {"type": "feed", "name": f"up{n}", "url": server.url(f"/feed/{n}.xml")}
                for n in range(feeds)
            ],
        },
        root=root,
    )


def timed_collect(
    cfg: Config, store: Store, now: datetime
) -> tuple[float, dict[str, int], dict[str, int]]:
    t0 = time.perf_counter()
    rep = collect(cfg, store, now=now)
    elapsed = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for s in rep.sources:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    return elapsed, rep.counts, statuses


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=50)
    ap.add_argument("--items", type=int, default=100)
    args = ap.parse_args()
    rng = random.Random(7)
    bodies = [wordpress_feed(n, args.items, rng) for n in range(args.feeds)]
    total_items = args.feeds * args.items
    size_mb = sum(len(b) for b in bodies) / 1e6
    print(
        f"{args.feeds} upstream feeds x {args.items} items ({size_mb:.1f} MB of RSS) on 127.0.0.1"
    )

    server = UpstreamServer().start()
    try:
        for n, body in enumerate(bodies):
            server.route(
                f"/feed/{n}.xml", body=body, content_type="application/rss+xml", etag=f'"e{n}"'
            )
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            cfg = make_config(root, server, args.feeds)
            store = Store(cfg.store_url)
            now = START + timedelta(days=30)

            t, counts, st = timed_collect(cfg, store, now)
            print(
                f"first collect:           {t:6.2f} s  {counts['new']} new "
                f"({total_items / t:,.0f} items/s)  sources {st}"
            )
            hits = len(server.hits)
            t, counts, st = timed_collect(cfg, store, now + timedelta(minutes=5))
            print(
                f"no-change poll (304):    {t:6.3f} s  {counts['unchanged']} unchanged  "
                f"{len(server.hits) - hits} requests  sources {st}  "
                f"[target <= 1 s: {'OK' if t <= 1.0 else 'MISSED'}]"
            )
            # Servers without ETag/Last-Modified: same bytes again, recognised unparsed.
            for n, body in enumerate(bodies):
                server.route(f"/feed/{n}.xml", body=body, content_type="application/rss+xml")
            t, counts, st = timed_collect(cfg, store, now + timedelta(minutes=10))
            print(
                f"no-change poll (no 304): {t:6.3f} s  {counts['unchanged']} unchanged  "
                f"sources {st}"
            )
            store.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
