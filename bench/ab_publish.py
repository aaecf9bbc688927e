"""Two versions of feedpub, back to back on one newsroom: one new article, nothing changed.

A figure taken on another day says little on a shared machine; this one compares the
working tree's feedpub with an older checkout in the same minutes, each with a store and
an output folder of its own, on the same content folder (both see the same changes).

    git worktree add /tmp/old <commit>
    .venv/bin/python bench/ab_publish.py --old-src /tmp/old/src --newsroom /work/bw/newsroom-100000
        [--runs 5] [--drop-caches]

The newsroom is one of bench/vs_hugo.py's (``--work``); the old version's store is
published cold the first time (minutes at 100,000 articles).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vs_hugo import DROP_CACHES, can_drop_page_cache, drop_page_cache  # bench/ on sys.path

NEW_SRC = Path(__file__).resolve().parents[1] / "src"


def publish(src: Path, config: Path, *, drop: bool = False) -> float:
    """One whole ``feedpub publish``'s wall time; ``drop``: the page cache emptied first."""
    if drop:
        drop_page_cache()
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("FEEDPUB_CONFIG", None)
    cmd = [sys.executable, "-m", "feedpub", "--config", str(config), "publish"]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=config.parent, env=env, capture_output=True, check=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--old-src", type=Path, required=True, help="the older checkout's src/")
    ap.add_argument("--newsroom", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--drop-caches",
        action="store_true",
        help="empty the page cache before each run (root, Linux): the store read from disk",
    )
    args = ap.parse_args()
    if args.drop_caches and not can_drop_page_cache():
        ap.error(f"--drop-caches: cannot write {DROP_CACHES} (run as root, on Linux)")
    drop = args.drop_caches
    room = args.newsroom.resolve()
    for src in (args.old_src, NEW_SRC):
        compileall.compile_dir(src / "feedpub", quiet=1)  # as an installed wheel has them
    new_cfg = room / "config.toml"
    old_cfg = room / "config-ab-old.toml"
    text = new_cfg.read_text(encoding="utf-8")
    old_text = text.replace('url = "sqlite:///feedpub.db"', 'url = "sqlite:///feedpub-ab-old.db"')
    old_text = old_text.replace('dir = "feeds"\n', 'dir = "feeds-ab-old"\n')
    assert old_text.count("ab-old") == 2, "not a bench/vs_hugo.py newsroom"
    old_cfg.write_text(old_text, encoding="utf-8")
    sample = next((room / "content").rglob("*.md"))
    extra = room / "content" / "zz-ab"
    shutil.rmtree(extra, ignore_errors=True)
    extra.mkdir()
    try:
        print(
            f"old {args.old_src} (store published cold if new: {publish(args.old_src, old_cfg):.1f} s)"
        )
        publish(NEW_SRC, new_cfg)  # both have seen zz-ab/ created
        rows: dict[str, tuple[list[float], list[float]]] = {
            "one new article": ([], []),
            "nothing changed": ([], []),
        }
        for i in range(args.runs):
            lines = sample.read_text(encoding="utf-8").splitlines(keepends=True)
            lines[1] = f"title: AB article {i}\n"
            (extra / f"ab{i}.md").write_text("".join(lines), encoding="utf-8")
            rows["one new article"][0].append(publish(args.old_src, old_cfg, drop=drop))
            rows["one new article"][1].append(publish(NEW_SRC, new_cfg, drop=drop))
        for _ in range(args.runs):
            rows["nothing changed"][0].append(publish(args.old_src, old_cfg, drop=drop))
            rows["nothing changed"][1].append(publish(NEW_SRC, new_cfg, drop=drop))
    finally:
        shutil.rmtree(extra)
        publish(args.old_src, old_cfg)
        publish(NEW_SRC, new_cfg)
    cache = ", the page cache emptied before each" if args.drop_caches else ""
    print(f"medians of {args.runs}, whole process, alternating old and new{cache}:")
    for name, (old, new) in rows.items():
        o, n = statistics.median(old), statistics.median(new)
        print(f"  {name:16} old {o * 1000:7.0f} ms   new {n * 1000:7.0f} ms   ({n / o:.2f} of old)")


if __name__ == "__main__":
    main()
