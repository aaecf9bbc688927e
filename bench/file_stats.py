"""What a hinted collect reads of a folder source's recorded file stats (issue 12): the whole
table, against the scope of one changed subfolder (feedpub.collect_scope), on a store that
`feedpub publish` filled, SQLite or PostgreSQL (copied there with `feedpub store migrate`).

    .venv/bin/python bench/file_stats.py --content /work/bw/newsroom-100000/content \\
        sqlite:////work/bw/newsroom-100000/feedpub.db \\
        postgresql+psycopg://postgres@127.0.0.1:5432/bench100k

Medians of ``--runs``, in-process, the store already open: the whole table
(``load_stats``), the scope when the store is as a clean collect left it (no per-folder
counts) and the scope counted folder by folder.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from feedpub.collect_scope import scoped
from feedpub.sources.walk import FolderHint, fingerprint
from feedpub.store import Store
from feedpub.store_files import load_stats


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("urls", nargs="+", help="store URLs")
    ap.add_argument("--content", type=Path, required=True, help="the folder source's folder")
    ap.add_argument("--source", default="folder:content")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    fp = fingerprint(args.content)
    if fp is None:
        raise SystemExit(f"cannot read {args.content}")
    changed = sorted(d for d in fp if d)[0]  # the first subfolder, as if a file came there
    clean = FolderHint({d: v for d, v in fp.items() if d != changed}, frozenset(fp), True)
    counted = FolderHint(clean.unchanged, clean.dirs, no_orphans=False)
    for url in args.urls:
        store = Store(url)
        try:
            with store.read() as conn:
                rows = len(load_stats(conn, args.source))
                whole = median_ms(lambda: load_stats(conn, args.source), args.runs)
                ok = scoped(conn, args.source, clean) is not None
                fast = median_ms(lambda: scoped(conn, args.source, clean), args.runs)
                slow = median_ms(lambda: scoped(conn, args.source, counted), args.runs)
        finally:
            store.close()
        print(
            f"{store.engine.dialect.name}: {rows:,} rows; whole table {whole:.0f} ms; "
            f"scope of {changed} {fast:.0f} ms (clean store), {slow:.0f} ms (counted)"
            + ("" if ok else "  [no scope: the store does not match the folder]")
        )


if __name__ == "__main__":
    main()
