"""Scheduler benchmark: what the daemon costs when nothing happens, and how fast it starts.

- idle tick: collect (nothing changed) + build (O(1) skip) + due-edition check + run log,
  the work `feedpub run` repeats every `collect_every`, at N articles;
- start: lock + reconcile + catch-up decisions for M newsletters (first and second start);
- catch-up decision after a long downtime (pure function), for daily/hourly/minutely crons;
- `feedpub status` data gathering.

    .venv/bin/python bench/scheduler.py [--articles 1000] [--newsletters 50] [--ticks 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedpub.collect import collect
from feedpub.config import Config, parse_config
from feedpub.feeds import build_feeds
from feedpub.scheduler.daemon import Daemon
from feedpub.scheduler.jobs import EditionState, decide_catch_up
from feedpub.status import gather_status
from feedpub.store import Store

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def config(root: Path, newsletters: int) -> Config:
    nls = [
        {
            "slug": f"nl-{i}",
            "title": f"Newsletter {i}",
            "from": "T <t@news.example>",
            "schedule": f"{i % 60} {i % 24} * * *",
            "timezone": ("Europe/London", "America/New_York", "Asia/Colombo")[i % 3],
        }
        for i in range(newsletters)
    ]
    data = {
        "site": {"title": "Bench", "base_url": "https://news.example/", "timezone": "UTC"},
        "store": {"url": "sqlite:///feedpub.db"},
        "sources": [{"type": "folder", "path": "content"}],
        "beats": [{"slug": "world", "title": "World"}],
        "newsletters": nls,
    }
    return parse_config(data, root=root)


def make_content(root: Path, n: int) -> None:
    folder = root / "content"
    folder.mkdir()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        date = (start + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M")
        (folder / f"a{i:06d}.md").write_text(
            f"---\ntitle: Article {i}\ndate: {date}\nbeat: world\n---\nBody {i}.\n",
            encoding="utf-8",
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    # The daemon refuses to start without the secret its newsletters need.
    os.environ.setdefault("FEEDPUB_SECRET", "bench-secret")
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=1000)
    ap.add_argument("--newsletters", type=int, default=50)
    ap.add_argument("--ticks", type=int, default=10)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_content(root, args.articles)
        cfg = config(root, args.newsletters)
        store = Store(cfg.store_url)
        t = time.perf_counter()
        collect(cfg, store, now=NOW)
        build_feeds(cfg, store, now=NOW)
        print(
            f"setup: first collect + build of {args.articles} articles: {ms(time.perf_counter() - t)}"
        )

        d = Daemon(cfg, store, clock=lambda: NOW)
        t = time.perf_counter()
        d.start(paused=True)
        first_start = time.perf_counter() - t
        d.stop(timeout=30)
        d = Daemon(cfg, store, clock=lambda: NOW + timedelta(minutes=1))
        t = time.perf_counter()
        d.start(paused=True)
        second_start = time.perf_counter() - t
        print(
            f"start with {args.newsletters} newsletters: first {ms(first_start)} "
            f"(jobs added), restart {ms(second_start)} (reconciled, nothing changed)"
        )

        times = []
        for i in range(args.ticks):
            now = NOW + timedelta(minutes=5 * (i + 1))
            t = time.perf_counter()
            d.tick(now)
            times.append(time.perf_counter() - t)
        print(
            f"idle tick at {args.articles} articles: median {ms(statistics.median(times))}, "
            f"max {ms(max(times))} over {args.ticks} ticks"
        )
        t = time.perf_counter()
        st = gather_status(cfg, store, NOW)
        print(
            f"status gather ({len(st.newsletters)} newsletters, {st.store.articles} articles): "
            f"{ms(time.perf_counter() - t)}"
        )
        d.stop(timeout=30)
        store.close()

    for label, cron, down in (
        ("daily, 30 days down", "0 7 * * *", timedelta(days=30)),
        ("hourly, 30 days down", "0 * * * *", timedelta(days=30)),
        ("every minute, 1 year down", "* * * * *", timedelta(days=365)),
    ):
        last = NOW - down
        t = time.perf_counter()
        c = decide_catch_up(
            newsletter="x",
            schedule=cron,
            tz="Europe/London",
            grace=timedelta(hours=6),
            now=NOW,
            editions=[EditionState(last, "sent")],
            scheduled_since=last,
            resume_window=timedelta(days=2),
        )
        print(
            f"catch-up decision, {label}: {ms(time.perf_counter() - t)} "
            f"(send {c.send is not None}, {c.skipped_count} skipped"
            f"{', older not counted' if c.skipped_truncated else ''})"
        )


if __name__ == "__main__":
    main()
