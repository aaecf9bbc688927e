"""Markdown to HTML: CommonMark with tables and strikethrough, by markdown-it-pyrs (the
markdown-it rules compiled in Rust; about 13x faster than markdown-it-py, the same HTML
for our content: bench/markdown_diff.py shows the differences, tests/test_markdown_engine.py
pins them).

Raw HTML is allowed here; every result goes through ``text.sanitize_html`` afterwards.
"""

from __future__ import annotations

from markdown_it_pyrs import MarkdownIt

ENGINE = "markdown-it-pyrs"

_md = MarkdownIt("commonmark").enable_many(["table", "strikethrough"])


def render(markdown: str) -> str:
    html: str = _md.render(markdown)
    return html
