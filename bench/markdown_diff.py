"""What the switch from markdown-it-py (pure Python) to markdown-it-pyrs (compiled, the
same markdown-it rules) changes in what readers get: every Markdown body of the sample
newsroom (content/), the seed files, the test suite's Markdown and generated articles, run
through both, then through ``text.sanitize_html`` as every article is. Prints each
difference (unified diff of the sanitized HTML) and the time per article of each.

    .venv/bin/python bench/markdown_diff.py [--generated 2000] [--show 5]

markdown-it-py is in the ``test`` extra (the reference here and in
tests/test_markdown_engine.py).
"""

from __future__ import annotations

import argparse
import difflib
import random
import re
import sys
import time
from pathlib import Path

from markdown_it import MarkdownIt
from vs_hugo import article  # bench/ is on sys.path when a script runs

from feedpub.sources import markdown
from feedpub.sources.frontmatter import split_front_matter
from feedpub.text import sanitize_html

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://news.example/post/x/"

reference = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
reference.enable(["table", "strikethrough"])


def bodies(generated: int) -> list[tuple[str, str]]:
    """(label, Markdown body) of every sample we compare."""
    out: list[tuple[str, str]] = []
    for folder in (ROOT / "content", Path("/work/shared/seed"), ROOT / "tests"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.md")):
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                body = split_front_matter(text, path.name).body
            except Exception:
                body = text
            out.append((str(path.relative_to(folder.parent)), body))
    # Markdown written inside the tests (front matter + body in string literals).
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        src = path.read_text(encoding="utf-8")
        for i, m in enumerate(re.finditer(r'"""(---\n.*?)"""', src, re.S)):
            try:
                out.append((f"{path.name}#{i}", split_front_matter(m.group(1), "t").body))
            except Exception:
                continue
    sys.path.insert(0, str(ROOT))
    from tests.test_markdown_engine import TRICKY

    out += [(f"corner case {i}", t) for i, t in enumerate(TRICKY)]
    rng = random.Random(12)
    out += [
        (f"generated/{i}", split_front_matter(article(i, rng), "g").body) for i in range(generated)
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=int, default=2000)
    ap.add_argument("--show", type=int, default=10, help="print at most this many diffs")
    args = ap.parse_args()
    samples = bodies(args.generated)
    raw_diff = 0
    diffs: list[tuple[str, list[str]]] = []
    t_ref = t_new = 0.0
    for label, body in samples:
        t0 = time.perf_counter()
        old = reference.render(body)
        t1 = time.perf_counter()
        new = markdown.render(body)
        t_new += time.perf_counter() - t1
        t_ref += t1 - t0
        raw_diff += old != new
        a, b = sanitize_html(old, BASE), sanitize_html(new, BASE)
        if a != b:
            diffs.append(
                (
                    label,
                    list(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=1)),
                )
            )
    n = len(samples)
    print(f"{n} Markdown bodies; raw HTML differs in {raw_diff}; after sanitize_html: {len(diffs)}")
    print(
        f"time per body: markdown-it-py {t_ref / n * 1e3:.3f} ms, "
        f"{markdown.ENGINE} {t_new / n * 1e3:.3f} ms ({t_ref / max(t_new, 1e-9):.1f}x)"
    )
    for label, lines in diffs[: args.show]:
        print(f"--- {label}")
        print("\n".join(lines[2:]))
    sys.exit(0)


if __name__ == "__main__":
    main()
