"""Render one feed document so that one article never stops a build, and no feed outgrows
its byte budget (docs/content.md "Limits").

* An item a writer refuses (an article stored by an older version with a control
  character, a writer bug) is left out of the document and reported by id, with the
  reason; the rest of the feed is written.
* A document over ``[output] max_feed_bytes`` carries plain summaries instead of full
  content for its oldest items, as many as it takes (1, 2, 4, … of them).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Mapping

from feedpub.feeds.model import FeedDoc, Format, Item

Render = Callable[[FeedDoc], bytes]


@dataclasses.dataclass
class Rendered:
    data: dict[Format, bytes]
    items: int  # items in each document written
    refused: dict[str, str]  # item id -> why a writer refused it (left out of every format)
    summarized: dict[Format, int]  # format -> oldest items cut to their summary


def render_guarded(writers: Mapping[Format, Render], doc: FeedDoc, *, max_bytes: int) -> Rendered:
    """Every format of ``doc``; an item any writer refuses is left out of all of them."""
    data: dict[Format, bytes] = {}
    refused: dict[str, str] = {}
    for f, render in writers.items():
        try:
            data[f] = render(doc)
        except Exception:
            for item in doc.items:
                try:
                    render(dataclasses.replace(doc, items=(item,)))
                except Exception as e:
                    refused.setdefault(item.id, f"{type(e).__name__}: {str(e)[:200]}")
    if refused:
        doc = dataclasses.replace(doc, items=tuple(i for i in doc.items if i.id not in refused))
        # Still failing without those items: the feed itself is wrong (BuildError upstream).
        data = {f: render(doc) for f, render in writers.items()}
    summarized: dict[Format, int] = {}
    for f, render in writers.items():
        if len(data[f]) > max_bytes and doc.items:
            data[f], summarized[f] = _within(render, doc, max_bytes)
    return Rendered(data, len(doc.items), refused, summarized)


def _within(render: Render, doc: FeedDoc, max_bytes: int) -> tuple[bytes, int]:
    """Summaries for the oldest 1, 2, 4, … items until the document fits (or all are)."""
    n = len(doc.items)
    k = 1
    while True:
        k = min(k, n)
        items = doc.items[: n - k] + tuple(summary_only(i) for i in doc.items[n - k :])
        data = render(dataclasses.replace(doc, items=items))
        if len(data) <= max_bytes or k == n:
            return data, k
        k *= 2


def summary_only(item: Item) -> Item:
    """``item`` with its summary (and a link to the article) in place of the full text."""
    text = html.escape(item.summary or item.title)
    link = html.escape(item.url, quote=True)
    return dataclasses.replace(
        item, content_html=f'<p>{text}</p>\n<p><a href="{link}">Read the article</a></p>'
    )
