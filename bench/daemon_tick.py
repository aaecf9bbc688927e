"""A daemon tick with nothing changed (issue 12: <= 20 ms at 100,000 articles), and one
with one new article in a subfolder.

Opens a newsroom that `feedpub publish` has already collected and built (e.g. one left by
``bench/vs_hugo.py --work DIR``), starts the daemon paused with its folder watcher, then
times ``Daemon.tick`` with nothing changed: with the watcher (the folder source is left
out) and without it (every tick walks and stats the folder: the peer, what a tick cost
before). Then one new article per tick, written into the first subfolder: with the
watcher (only that subfolder is listed) and without it (the whole folder is). Medians
of ``--ticks``; in-process, the store already open. The new files are removed (and
retracted) at the end. A newsroom whose store is PostgreSQL works too (copied there with
``feedpub store migrate``): the bench takes the leader lease before each tick.

    .venv/bin/python bench/daemon_tick.py /tmp/e_vh/newsroom-100000 [--ticks 9]
    .venv/bin/python bench/daemon_tick.py /tmp/tick-100k --make 100000   # generate + publish first
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from feedpub.clock import system_clock
from feedpub.config import FolderSourceConfig, load_config
from feedpub.scheduler.daemon import Daemon
from feedpub.store import Store


def lead(d: Daemon) -> None:
    """On PostgreSQL a tick works only while this instance holds the leader lease: take
    or renew it (outside the timed part), as the daemon's lease thread would."""
    if d.leadership is not None and not d.leadership.step():
        sys.exit("another feedpub run leads this store: stop it first")


def ticks(d: Daemon, n: int) -> list[float]:
    out = []
    now = system_clock()
    for i in range(n):
        lead(d)
        t = time.perf_counter()
        d.tick(now + timedelta(seconds=i))
        out.append(time.perf_counter() - t)
    return out


def new_article_ticks(d: Daemon, folder: Path, n: int, tag: str, watched: bool) -> list[float]:
    """Time ``n`` ticks, each after one new article is written into ``folder``."""
    out = []
    now = system_clock()
    for i in range(n):
        (folder / f"bench-new-{tag}-{i}.md").write_text(
            f"---\ntitle: Bench {tag} {i}\ndate: 2026-01-01 09:00\n---\n" + "Word " * 600 + "\n",
            encoding="utf-8",
        )
        if watched:
            deadline = time.monotonic() + 10
            while not d.watched.watcher.pending() and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(0.3)  # one write is several events: let them all in
        lead(d)
        t = time.perf_counter()
        d.tick(now + timedelta(minutes=i + 1))
        out.append(time.perf_counter() - t)
    return out


def first_subfolder(root: Path) -> Path:
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return subs[0] if subs else root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("newsroom", type=Path)
    ap.add_argument("--ticks", type=int, default=9)
    ap.add_argument("--make", type=int, metavar="N", help="generate N articles and publish first")
    args = ap.parse_args()
    if args.make and not (args.newsroom / "config.toml").exists():
        import subprocess

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from vs_hugo import make_newsroom

        args.newsroom.mkdir(parents=True, exist_ok=True)
        make_newsroom(args.newsroom, args.make)
        feedpub = [sys.executable, "-m", "feedpub", "--config", "config.toml", "publish"]
        subprocess.run(feedpub, cwd=args.newsroom, check=True, capture_output=True)
    os.chdir(args.newsroom)
    os.environ.setdefault("FEEDPUB_SECRET", "bench")
    config = load_config(args.newsroom / "config.toml")
    store = Store(config.store_url)
    with store.read() as conn:
        import sqlalchemy as sa

        from feedpub import schema as s

        n = conn.execute(sa.select(sa.func.count()).select_from(s.articles)).scalar_one()
    folders = [c for c in config.sources if isinstance(c, FolderSourceConfig)]
    if not folders:
        sys.exit("the newsroom has no folder source")
    folder = first_subfolder(config.resolve(folders[0].path))
    new_ticks = max(3, args.ticks // 2)
    d = Daemon(config, store)
    d.start(paused=True)
    try:
        scan = ticks(d, args.ticks)  # no watcher: each tick scans the folder
        new_scan = new_article_ticks(d, folder, new_ticks, "scan", watched=False)
        if not d.watched.start():
            sys.exit("the folder watcher could not start")
        first = ticks(d, 1)  # the watcher knows nothing yet: one scan
        time.sleep(1)
        watched = ticks(d, args.ticks)
        new_watched = new_article_ticks(d, folder, new_ticks, "watched", watched=True)
    finally:
        for p in folder.glob("bench-new-*.md"):
            p.unlink()
        d.watched.stop()
        lead(d)
        d.tick(system_clock() + timedelta(hours=1))  # retract them
        d.stop(timeout=30)
        store.close()
    print(f"daemon tick with nothing changed, {n:,} articles, median of {args.ticks}:")
    print(f"  folder scanned every tick (no watcher): {statistics.median(scan) * 1000:8.1f} ms")
    print(f"  first tick with the watcher (scans):     {first[0] * 1000:8.1f} ms")
    print(f"  watched, nothing changed:                {statistics.median(watched) * 1000:8.1f} ms"
          f"  (min {min(watched) * 1000:.1f}, max {max(watched) * 1000:.1f})")  # fmt: skip
    print(f"daemon tick with one new article in {folder.name}/, median of {new_ticks}:")
    print(
        f"  folder scanned (no watcher):             {statistics.median(new_scan) * 1000:8.1f} ms"
    )
    label = f"watched (only {folder.name}/ listed):"
    print(f"  {label:<41}{statistics.median(new_watched) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
