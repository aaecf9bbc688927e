"""Collect benchmark: first collect (files/s, target >= 500) and a re-collect with nothing
changed (target <= 0.5 s at 10,000 files), on generated content folders.

    .venv/bin/python bench/collect.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _corpus import WORDS  # bench/ is on sys.path when a script runs

from feedpub.collect import collect
from feedpub.config import Config, parse_config
from feedpub.store import Store


def make_folder(root: Path, n: int, rng: random.Random) -> None:
    content = root / "content"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        sub = content / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        title = " ".join(rng.choice(WORDS) for _ in range(6)).capitalize() + f" {i}"
        date = start + timedelta(minutes=37 * i)
        paras = "\n\n".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))) + "."
            for _ in range(rng.randint(3, 8))
        )
        if i % 10 == 0:
            text = (
                f"{title}\n- Author {i % 50}\n- {date:%b %d, %Y}\n- 2 min read\n\n"
                f"Section heading\n{paras}\nComments"
            )
            (sub / f"a{i}.txt").write_text(text, encoding="utf-8")
        else:
            front = (
                f'---\ntitle: "{title}"\nauthor: Author {i % 50}\ndate: {date:%Y-%m-%d %H:%M}\n'
                f"tags: [t{i % 30}]\n---\n"
            )
            body = f"## Heading\n\n{paras}\n\n[link](/post/other-{i}/) <em>x</em>\n"
            (sub / f"a{i}.md").write_text(front + body, encoding="utf-8")


def config(root: Path) -> Config:
    beats = [
        {"slug": f"beat-{b}", "title": f"Beat {b}", "tags": [f"t{b}"], "keywords": [WORDS[b]]}
        for b in range(20)
    ]
    return parse_config(
        {
            "site": {
                "title": "Bench",
                "base_url": "https://bench.example/",
                "timezone": "Asia/Colombo",
                "default_beat": "beat-0",
            },
            "store": {"url": "sqlite:///bench.db"},
            "sources": [{"type": "folder", "path": "content"}],
            "beats": beats,
        },
        root=root,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    args = ap.parse_args()
    print(
        f"{'files':>7} {'first collect':>14} {'files/s':>9} {'re-collect':>11}  targets: >=500 files/s, <=0.5 s"
    )
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            make_folder(root, n, random.Random(n))
            cfg = config(root)
            store = Store(cfg.store_url)
            now = datetime(2026, 11, 26, tzinfo=UTC)
            t0 = time.perf_counter()
            report = collect(cfg, store, now=now)
            first = time.perf_counter() - t0
            assert report.counts["new"] + report.counts["scheduled"] == n, report.counts
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                again = collect(cfg, store, now=now)
                best = min(best, time.perf_counter() - t0)
                assert again.counts["unchanged"] == n and not again.changed
            store.close()
            print(f"{n:>7} {first:>13.2f}s {n / first:>9.0f} {best:>10.3f}s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
