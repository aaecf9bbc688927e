"""Markdown to HTML: CommonMark with tables and strikethrough, by markdown-it-pyrs (the
markdown-it rules compiled in Rust; about 13x faster than markdown-it-py, the same HTML
for our content: bench/markdown_diff.py shows the differences, tests/test_markdown_engine.py
pins them).

Raw HTML is allowed here; every result goes through ``text.sanitize_html`` afterwards.

markdown-it-pyrs 0.4 panics on some inputs (``"[```\n```"``: an index out of bounds in its
link-label scan). Such a document is rendered by markdown-it-py instead, the pure-Python
implementation of the same rules (same HTML for our content; slower, and used only then),
and the caller is told so it can warn; the article is not lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it_pyrs import MarkdownIt

from feedpub.errors import is_rust_panic

ENGINE = "markdown-it-pyrs"
FALLBACK_ENGINE = "markdown-it-py"

_md = MarkdownIt("commonmark").enable_many(["table", "strikethrough"])

# More "[" that no "]" closes than this in one block (text between blank lines) and they
# are escaped before rendering: markdown-it-py 4.3 looks for the end of a link label
# from each of them again, and "![" * 200,000 took 25 s (time quadratic in their count).
# No prose has a hundred unclosed brackets in one paragraph.
MAX_UNCLOSED_BRACKETS = 100
_BLOCKS = re.compile(r"(\n[ \t]*\n)")


def render(markdown: str, on_fallback: Callable[[str], None] | None = None) -> str:
    """``markdown`` as HTML; ``on_fallback(reason)`` is called when the compiled engine
    failed on it and the pure-Python one rendered it."""
    source = defuse_brackets(markdown)
    try:
        html: str = _md.render(source)
        return html
    except BaseException as e:
        if not is_rust_panic(e):
            raise
        reason = f"{ENGINE} failed on this text ({_first_line(e)}); rendered with {FALLBACK_ENGINE}"
    html = _fallback_render(source)
    if on_fallback is not None:
        on_fallback(reason)
    return html


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines() or [type(error).__name__]
    return lines[0][:200]


def _fallback_render(source: str) -> str:
    # Imported here: markdown-it-py costs ~40 ms to import and is needed only after a panic.
    from markdown_it import MarkdownIt as PyMarkdownIt

    md = PyMarkdownIt("commonmark").enable(["table", "strikethrough"])
    html: str = md.render(source)
    return html


def defuse_brackets(text: str, limit: int = MAX_UNCLOSED_BRACKETS) -> str:
    """``text`` with the unclosed "[" of any block holding more than ``limit`` of them
    written as "\\[" (literal brackets, as Markdown shows them anyway). Linear."""
    if text.count("[") <= limit:
        return text
    parts = _BLOCKS.split(text)
    changed = False
    for i in range(0, len(parts), 2):
        if parts[i].count("[") > limit:
            escaped = _escape_unclosed(parts[i], limit)
            if escaped is not parts[i]:
                parts[i] = escaped
                changed = True
    return "".join(parts) if changed else text


def _escape_unclosed(block: str, limit: int) -> str:
    open_at: list[int] = []
    i, n = 0, len(block)
    while i < n:
        c = block[i]
        if c == "\\":
            i += 2  # an escaped character is no bracket
            continue
        if c == "[":
            open_at.append(i)
        elif c == "]" and open_at:
            open_at.pop()
        i += 1
    if len(open_at) <= limit:
        return block
    out: list[str] = []
    last = 0
    for pos in open_at:
        out.append(block[last:pos])
        out.append("\\[")
        last = pos + 1
    out.append(block[last:])
    return "".join(out)
