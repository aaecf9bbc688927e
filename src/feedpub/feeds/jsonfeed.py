"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/).

Archive pages chain through ``next_url`` (§"Pagination": "the URL of a feed that provides
the next n items"): current feed -> newest archive page -> ... -> oldest page.
"""

from __future__ import annotations

import json
from typing import Any

from feedpub.feeds.model import FeedDoc, FeedInfo, Format, Item, Person

VERSION_URL = "https://jsonfeed.org/version/1.1"


def _person(p: Person) -> dict[str, str]:
    out = {"name": p.name}
    if p.uri:
        out["url"] = p.uri
    return out


def _item(item: Item, feed_language: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "title": item.title,
        "content_html": item.content_html,
    }
    if item.summary:
        out["summary"] = item.summary
    if item.image is not None:
        # The lead image: "image" (the item's main image) and "banner_image" (shown
        # above the item by readers that have a banner slot), JSON Feed 1.1 §items.
        out["image"] = item.image.url
        out["banner_image"] = item.image.url
    out["date_published"] = item.published.isoformat()
    out["date_modified"] = item.updated.isoformat()
    if item.authors:
        out["authors"] = [_person(p) for p in item.authors]
    if item.categories:
        out["tags"] = list(item.categories)
    out["language"] = item.language or feed_language
    if item.image is not None:
        att: dict[str, Any] = {"url": item.image.url, "mime_type": item.image.type}
        if item.image.length:
            att["size_in_bytes"] = item.image.length
        out["attachments"] = [att]
    return out


def _dumps(obj: Any) -> str:
    # Compact: json's C encoder is only used without ``indent`` (~10x faster).
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def render_json(doc: FeedDoc) -> bytes:
    feed = _feed(doc.info)
    feed["items"] = [_item(i, doc.info.language) for i in doc.items]
    return (_dumps(feed) + "\n").encode("utf-8")


def item_json(item: Item, feed_language: str) -> str:
    """One item as :func:`render_json` writes it in a feed of ``feed_language``."""
    return _dumps(_item(item, feed_language))


def json_head(info: FeedInfo) -> str:
    """A JSON Feed document up to its first item: ``json_head(info) + ",".join(items) +
    JSON_TAIL`` is what :func:`render_json` writes ("items" is its last member)."""
    text = _dumps(_feed(info))
    assert text.endswith("}")
    return text[:-1] + ',"items":['


JSON_TAIL = "]}\n"


def _feed(info: FeedInfo) -> dict[str, Any]:
    feed: dict[str, Any] = {
        "version": VERSION_URL,
        "title": info.title,
        "home_page_url": info.home_url,
        "feed_url": info.self_url(Format.JSON),
        "description": info.description,
        "language": info.language,
    }
    if info.icon:
        feed["favicon"] = info.icon
    if info.logo:
        feed["icon"] = info.logo
    feed["authors"] = [_person(info.author)]
    if info.hub:
        feed["hubs"] = [{"type": "WebSub", "url": info.hub}]
    nxt = info.prev_archive_url(Format.JSON)
    if nxt:
        feed["next_url"] = nxt
    return feed
