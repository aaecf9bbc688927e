"""feeds.opml: every feed, for readers that import a list (OPML 2.0, opml.org/spec2)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from feedpub.feeds.feedgen_writer import rfc822


def render_opml(
    title: str,
    owner_url: str,
    feeds: Sequence[tuple[str, str, str, str]],
    updated: datetime,
) -> bytes:
    """``feeds``: (group, title, xml_url, html_url) in display order."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateModified").text = rfc822(updated)
    etree.SubElement(head, "ownerId").text = owner_url
    body = etree.SubElement(root, "body")
    groups: dict[str, etree._Element] = {}
    for group, ftitle, xml_url, html_url in feeds:
        parent = groups.get(group)
        if parent is None:
            parent = etree.SubElement(body, "outline", text=group)  # a folder: text only
            groups[group] = parent
        etree.SubElement(
            parent,
            "outline",
            type="rss",
            text=ftitle,
            title=ftitle,
            xmlUrl=xml_url,
            htmlUrl=html_url,
        )
    data: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return data
