"""Markdown to HTML: markdown-it-py (CommonMark) with tables and strikethrough.

Raw HTML is allowed here; every result goes through ``text.sanitize_html`` afterwards.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def render(markdown: str) -> str:
    html: str = _md.render(markdown)
    return html
