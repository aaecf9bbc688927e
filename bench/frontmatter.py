"""Front matter: microseconds per file for PyYAML (the C loader) and for the fast reader
(sources/frontmatter_fast.py, falling back to PyYAML for what it declines), on the
generated newsroom of bench/vs_hugo.py; first the block alone, then ``split_front_matter``
on the whole file. Checks on the way that both give the same result.

    .venv/bin/python bench/frontmatter.py [--n 10000] [--runs 5] [--content DIR]

``--content DIR`` reads the ``*.md`` files under DIR (read only) instead of generating
``--n`` articles in memory.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from vs_hugo import article  # bench/ is on sys.path when a script runs

from feedpub.sources import frontmatter_fast
from feedpub.sources.frontmatter import _Loader, split_front_matter


def block_of(text: str) -> str:
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i])
    raise SystemExit("a file without closed front matter")


def per_item(fn: Callable[[str], Any], items: list[str], runs: int) -> tuple[float, list[float]]:
    """Median and all runs, in µs per item."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        times.append((time.perf_counter() - t0) / len(items) * 1e6)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="articles to generate (10,000)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each measure (median)")
    ap.add_argument("--content", type=Path, help="read the *.md files under this folder")
    args = ap.parse_args()

    if args.content:
        paths = sorted(args.content.rglob("*.md"))
        texts = [p.read_text(encoding="utf-8") for p in paths]
        where = f"{len(texts):,} files under {args.content}"
    else:
        rng = random.Random(args.n)
        texts = [article(i, rng) for i in range(args.n)]
        where = f"{len(texts):,} generated articles"
    blocks = [block_of(t) for t in texts]

    def pyyaml(block: str) -> Any:
        return yaml.load(block, Loader=_Loader)

    def fast(block: str) -> Any:
        meta = frontmatter_fast.read(block)
        return pyyaml(block) if meta is None else meta

    taken = sum(frontmatter_fast.read(b) is not None for b in blocks)
    assert all(fast(b) == pyyaml(b) for b in blocks), "the fast reader differs from PyYAML"
    print(f"{where}; the fast reader takes {taken:,} of {len(blocks):,} blocks")

    rows = [
        ("block, PyYAML", per_item(pyyaml, blocks, args.runs)),
        ("block, fast reader", per_item(fast, blocks, args.runs)),
        (
            "split_front_matter, PyYAML",
            per_item(lambda t: split_front_matter(t, "f.md", fast=False), texts, args.runs),
        ),
        (
            "split_front_matter, fast",
            per_item(lambda t: split_front_matter(t, "f.md"), texts, args.runs),
        ),
    ]
    for label, (median, runs) in rows:
        print(
            f"{label:28} {median:6.1f} µs/file (median of {args.runs}; runs "
            f"{', '.join(f'{x:.1f}' for x in runs)})"
        )


if __name__ == "__main__":
    main()
