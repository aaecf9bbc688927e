"""Subscriber lifecycle benchmark (issue 13):

1. sign-up POST throughput of ``feedpub serve`` on 127.0.0.1 with 50 concurrent clients,
   each POST storing a pending subscriber and QUEUEING its confirmation mail (nothing is
   sent inline); for reference, the same server's one-click unsubscribe POST (its
   simplest write) in the same run;
2. ``bounces ingest`` messages/s over a 10,000-message Maildir (a mix of DSNs, text
   bounces, ARF complaints, auto-replies and mail that is not ours), then the same
   Maildir again (every message already ingested); for reference, flufl.bounce's
   detectors alone over the same messages (parsing and scanning, no store).

    .venv/bin/python bench/lifecycle.py [--signups 3000] [--clients 50] [--messages 10000]
                                       [--store-url postgresql+psycopg://...]

Figures depend on the machine: this one has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.bounces.ingest import ingest
from feedpub.bounces.sources import Maildir
from feedpub.clock import running_from
from feedpub.config import Config, parse_config
from feedpub.digest.tokens import UNSUBSCRIBE, tokens_for
from feedpub.lifecycle.verp import Verp
from feedpub.store import Store
from feedpub.web.server import make_server

NOW = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "bounces"
MIX = [  # (file, share of the Maildir)
    ("postfix_hard.eml", 20),
    ("gmail_hard.eml", 15),
    ("exchange_ndr.eml", 10),
    ("gmail_full.eml", 10),
    ("postfix_delayed.eml", 5),
    ("exim_text.eml", 5),
    ("yahoo_text.eml", 5),
    ("arf_complaint.eml", 5),
    ("autoreply.eml", 10),
    ("vacation.eml", 5),
    ("not_ours.eml", 10),
]


def make_config(root: Path, store_url: str) -> Config:
    import os

    os.environ.setdefault("FEEDPUB_BENCH_SECRET", "bench-secret")
    return parse_config(
        {
            "site": {"title": "Bench", "base_url": "https://news.example/"},
            "store": {"url": store_url},
            "beats": [{"slug": "world", "title": "World"}, {"slug": "tech", "title": "Tech"}],
            "newsletters": [
                {"slug": "daily", "title": "Bench Daily", "from": "Bench <news@news.example>"}
            ],
            "signup": {"max_per_ip_per_hour": 10**9, "max_mails_per_address_per_day": 10**9},
            "secrets": {"token_key_env": "FEEDPUB_BENCH_SECRET"},
        },
        root=root,
    )


def hammer(
    port: int, n: int, clients: int, request: Callable[[int], tuple[str, str, bytes]]
) -> float:
    """Send n requests from ``clients`` threads (a connection each request: HTTP/1.0).
    Returns requests/s; raises if any answer is not 2xx."""
    counter = iter(range(n))
    lock = threading.Lock()
    errors: list[str] = []
    resets = [0]

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            method, path, body = request(i)
            for _attempt in range(20):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request(
                        method, path, body, {"Content-Type": "application/x-www-form-urlencoded"}
                    )
                    resp = conn.getresponse()
                    resp.read()
                except OSError:  # a full listen backlog resets the connection: try again
                    with lock:
                        resets[0] += 1
                    time.sleep(0.01)
                    continue
                finally:
                    conn.close()
                if resp.status >= 300:
                    errors.append(f"{path}: {resp.status}")
                break
            else:
                errors.append(f"{path}: connection reset 20 times")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[:3]}")
    if resets[0]:
        print(f"  ({resets[0]} connection(s) reset by the server's listen backlog, retried)")
    return n / elapsed


def bench_signup(root: Path, store_url: str, n: int, clients: int) -> None:
    config = make_config(root, store_url)
    store = Store(config.store_url)
    server = make_server(config, store, "127.0.0.1", 0, clock=running_from(NOW))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_port
    try:

        def signup(i: int) -> tuple[str, str, bytes]:
            body = urlencode(
                {"email": f"reader{i}@example.org", "newsletter": "daily", "beat": "world"}
            )
            return "POST", "/subscribe/daily", body.encode()

        hammer(port, min(200, n), clients, signup)  # warm-up (not counted)
        rate = hammer(port, n, clients, lambda i: signup(i + 10**6))
        with store.read() as conn:
            queued = conn.execute(sa.select(sa.func.count()).select_from(s.mail_queue)).scalar_one()
            pending = conn.execute(
                sa.select(sa.func.count()).where(s.subscribers.c.status == "pending")
            ).scalar_one()
        assert queued == pending == n + min(200, n), (queued, pending)
        # reference: one-click unsubscribe of the pending rows (the server's simplest write)
        tokens = tokens_for(config)
        with store.read() as conn:
            ids = list(conn.execute(sa.select(s.subscribers.c.id)).scalars())

        def unsubscribe(i: int) -> tuple[str, str, bytes]:
            t = tokens.make(UNSUBSCRIBE, ids[i % len(ids)], "daily")
            return "POST", f"/unsubscribe?t={t}", b"List-Unsubscribe=One-Click"

        ref = hammer(port, n, clients, unsubscribe)
        backend = "PostgreSQL" if store_url.startswith("postgresql") else "SQLite"
        print(
            f"sign-up POST ({backend}, {clients} concurrent clients, confirmation mail queued): "
            f"{rate:,.0f} requests/s over {n:,} requests"
        )
        print(f"  reference, one-click unsubscribe POST on the same server: {ref:,.0f} requests/s")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        store.close()


def bench_ingest(root: Path, store_url: str, n: int, subscribers: int = 1000) -> None:
    config = make_config(root, store_url)
    store = Store(config.store_url)
    rng = random.Random(13)
    with store.begin() as conn:
        conn.execute(
            sa.insert(s.subscribers),
            [
                {"email": f"r{i}@example.org", "name": "", "status": "active", "hard_bounces": 0,
                 "created": NOW, "updated": NOW}
                for i in range(subscribers)
            ],
        )  # fmt: skip
        eid = conn.execute(
            sa.insert(s.editions).values(
                newsletter="daily", slot="2026-11-26T07:00Z", number=1, status="sent",
                cutoff=NOW, since=NOW - timedelta(days=1), created=NOW, article_count=1,
                recipient_count=subscribers,
            )
        ).inserted_primary_key[0]  # fmt: skip
        conn.execute(
            sa.insert(s.deliveries),
            [
                {"edition_id": eid, "subscriber_id": i + 1, "email": f"r{i}@example.org",
                 "selection": "world", "status": "sent", "attempts": 1,
                 "message_id": f"daily.x.{i + 1}@news.example", "updated": NOW}
                for i in range(subscribers)
            ],
        )  # fmt: skip
    verp = Verp(config.token_key(), config)
    nl = config.newsletter("daily")
    templates = [(CORPUS / f).read_text(encoding="utf-8") for f, _ in MIX]
    weights = [w for _, w in MIX]
    box = root / "Maildir"
    for d in ("cur", "new", "tmp"):
        (box / d).mkdir(parents=True)
    raws = []
    for i in range(n):
        sid = rng.randint(1, subscribers)
        text = rng.choices(templates, weights)[0]
        text = (
            text.replace("@@VERP@@", verp.envelope_from(nl, verp.token_for_delivery(eid, sid)))
            .replace("@@RCPT@@", f"r{sid - 1}@example.org")
            .replace("@@MSGID@@", f"daily.x.{sid}@news.example")
        )
        # every message its own Message-ID (the same bounce twice is a duplicate)
        text = (
            text.replace("Message-I", f"X-Bench: {i}\nMessage-I", 1)
            .replace("Message-ID: <", f"Message-ID: <{i}.", 1)
            .replace("Message-Id: <", f"Message-Id: <{i}.", 1)
            .replace("Message-id: <", f"Message-id: <{i}.", 1)
        )
        raw = text.encode("utf-8")
        raws.append(raw)
        (box / "new" / f"{1732606000 + i}.{i}.bench").write_bytes(raw)
    size = sum(len(r) for r in raws)
    t0 = time.perf_counter()
    first = ingest(config, store, Maildir(box).messages(), source="bench", now=NOW)
    t1 = time.perf_counter()
    second = ingest(config, store, Maildir(box).messages(), source="bench", now=NOW)
    t2 = time.perf_counter()
    from feedpub.bounces.detect import scan

    t3 = time.perf_counter()
    for raw in raws:
        scan(message_from_bytes(raw, policy=compat32))
    t4 = time.perf_counter()
    assert first.read == n and not first.errors, first.errors[:3]
    assert second.stored == 0 and second.duplicates == first.stored
    backend = "PostgreSQL" if store_url.startswith("postgresql") else "SQLite"
    print(
        f"bounces ingest ({backend}), a {n:,}-message Maildir ({size / 1e6:.1f} MB): "
        f"{n / (t1 - t0):,.0f} messages/s ({t1 - t0:.1f} s; stored {first.stored:,}, "
        f"not ours {first.not_ours:,}; {dict(first.actions)})"
    )
    print(f"  the same Maildir again (all already ingested): {n / (t2 - t1):,.0f} messages/s")
    print(
        f"  reference, flufl.bounce detectors alone (parse + scan, no store): "
        f"{n / (t4 - t3):,.0f} messages/s"
    )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signups", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--store-url", default=None, help="default: a fresh SQLite file")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}; figures from a shared 2-core machine")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{tmp}/signup.db"
        bench_signup(Path(tmp), url, args.signups, args.clients)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{tmp}/ingest.db"
        bench_ingest(Path(tmp), url, args.messages)


if __name__ == "__main__":
    main()
