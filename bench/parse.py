"""Per-article parsing: microseconds per file for ``folder.parse_file`` over the generated
newsroom of bench/vs_hugo.py (front matter, Markdown, sanitizing, summary, reading time,
slug and URLs), in one process; then the wall time of a cold ``feedpub collect`` of the
same files (a fresh store, the worker pool as configured).

    .venv/bin/python bench/parse.py [--n 10000] [--runs 3] [--work DIR] [--profile]

``--work DIR`` keeps the generated newsroom for the next run; ``--profile`` prints the
functions that take the most time (cProfile, one more pass).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from vs_hugo import make_newsroom  # bench/ is on sys.path when a script runs

from feedpub.config import FolderSourceConfig, load_config
from feedpub.errors import ContentError
from feedpub.sources.base import SourceContext
from feedpub.sources.folder import parse_file


def newsroom(work: Path, n: int) -> Path:
    root = work / f"parse-{n}"
    if not (root / "config.toml").is_file():
        shutil.rmtree(root, ignore_errors=True)
        make_newsroom(root, n)
    return root


def parse_pass(root: Path) -> tuple[float, int, int]:
    """(seconds, files, rejected) for parsing every content file once."""
    config = load_config(root / "config.toml")
    source = config.sources[0]
    assert isinstance(source, FolderSourceConfig)
    ctx = SourceContext(config=config, now=datetime.now(UTC))
    content = root / "content"
    jobs = [(p.relative_to(content).as_posix(), p) for p in sorted(content.rglob("*.md"))]
    rejected = 0
    t0 = time.perf_counter()
    for rel, path in jobs:
        try:
            parse_file(path, rel, ctx, source, "content")
        except ContentError:
            rejected += 1
    return time.perf_counter() - t0, len(jobs), rejected


def cold_collect(root: Path, scratch: Path) -> float:
    """Wall seconds of ``feedpub collect`` in a fresh copy of the newsroom (no store yet)."""
    run = scratch / "collect"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    shutil.copy(root / "config.toml", run / "config.toml")
    os.symlink(root / "content", run / "content")
    cmd = [sys.executable, "-m", "feedpub", "--config", str(run / "config.toml"), "collect"]
    env = {k: v for k, v in os.environ.items() if k != "FEEDPUB_CONFIG"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="articles (default 10,000)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measure (median)")
    ap.add_argument("--work", type=Path, help="keep the generated newsroom here")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one pass")
    ap.add_argument("--skip-collect", action="store_true", help="parse timing only")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="feedpub-parse-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        root = newsroom(work, args.n)
        parse_pass(root)  # warm: imports, caches of the file system, lazily built parsers
        per_file = []
        for _ in range(args.runs):
            seconds, files, rejected = parse_pass(root)
            per_file.append(seconds / files * 1e6)
        print(
            f"parse: {statistics.median(per_file):.0f} µs/file (median of {args.runs}; "
            f"runs {', '.join(f'{x:.0f}' for x in per_file)}; {files:,} files, "
            f"{rejected} rejected)"
        )
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(parse_pass, root)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        if not args.skip_collect:
            walls = [cold_collect(root, Path(tmp)) for _ in range(args.runs)]
            print(
                f"cold collect of {args.n:,}: {statistics.median(walls):.2f} s "
                f"(median of {args.runs}; runs {', '.join(f'{x:.2f}' for x in walls)})"
            )


if __name__ == "__main__":
    main()
