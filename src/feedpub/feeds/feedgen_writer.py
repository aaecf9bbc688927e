"""RSS 2.0 and Atom 1.0 through feedgen 1.0.0 — the one module that imports feedgen.

feedgen traps handled here (see FIELD-NOTES.md and feedgen issues #122, #135):

- ``add_entry()`` prepends: items arrive sorted newest first, so we append.
- Feed ``updated`` / ``lastBuildDate`` and entry ``updated`` default to the build time:
  we always set them from the items (newest item change), so rebuilds are byte-identical.
- The RSS channel ``<link>`` is the href of the *last* ``link()`` call: self first,
  alternate last. RSS drops hub and archive links: our extension adds them.
- Atom entry links lose rel/type/length (#135), which breaks enclosures: we never pass
  the enclosure to feedgen; our entry extension writes ``<link rel="enclosure">`` (Atom)
  and ``<enclosure>`` (RSS, ``length="0"`` when unknown, never ``"None"``).
- ``content(type="CDATA")`` writes ``type="CDATA"`` into Atom: we use ``type="html"``.
- Authors without an email vanish from RSS: our extension writes ``dc:creator`` (for
  every author of an item unless all have an email: an item mixing both is flagged).
- RSS dates go through ``formatRFC2822``, which switches the process-wide locale (not
  thread-safe): we replace it with :func:`email.utils.format_datetime` (RFC 5322 §3.3).
- XML-forbidden characters make lxml refuse the whole feed: the plan strips them.

RSS and Atom are built from two separate FeedGenerator objects so that no setter meant
for one format leaks into the other (``guid()`` also sets ``atom:id``, ``logo()`` sets
the RSS image...).
"""

from __future__ import annotations

import email.utils
import html
from datetime import datetime
from typing import Any

import feedgen.entry
import feedgen.feed
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feedpub.feeds.model import MEDIA_TYPES, Enclosure, FeedDoc, FeedInfo, Format, Item

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005 §5
MEDIA_NS = "http://search.yahoo.com/mrss/"  # Media RSS 1.5.1 (RSS and Atom alike)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def media_content(img: Enclosure) -> dict[str, str]:
    """``media:content`` attributes (Media RSS §"media:content"): what Feedly, Inoreader,
    NetNewsWire, Slack and Teams read for a lead image. Sizes only when known."""
    attrs = {"url": img.url, "medium": "image", "type": img.type}
    if img.length:
        attrs["fileSize"] = str(img.length)
    if img.width and img.height:
        attrs["width"] = str(img.width)
        attrs["height"] = str(img.height)
    return attrs


def media_thumbnail(img: Enclosure) -> dict[str, str]:
    attrs = {"url": img.url}
    if img.width and img.height:
        attrs["width"] = str(img.width)
        attrs["height"] = str(img.height)
    return attrs


def entry_language(item: Item, info: FeedInfo) -> str:
    """The entry's xml:lang (Atom) / item language: its own, else the feed's."""
    return item.language or info.language


def rss_item_language(item: Item, info: FeedInfo) -> str | None:
    """RSS has no per-item language: ``dc:language``, only where it differs from the
    channel's ``<language>`` (the channel's applies otherwise)."""
    lang = item.language
    return lang if lang and lang.casefold() != info.language.casefold() else None


def rfc822(dt: datetime) -> str:
    """RFC 822/5322 date with a numeric zone, locale-independent."""
    return email.utils.format_datetime(dt)


# feedgen formats RSS dates by switching the C locale process-wide; ours has no side effect.
feedgen.entry.formatRFC2822 = rfc822
feedgen.feed.formatRFC2822 = rfc822


def _sub(parent: Any, tag: str, text: str | None = None, **attrib: str) -> Any:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


class _FeedExt(BaseExtension):  # type: ignore[misc]
    """Feed-level additions feedgen cannot write: RSS hub/archive links, fh:archive."""

    info: FeedInfo | None = None
    fmt: Format = Format.RSS

    def extend_ns(self) -> dict[str, str]:
        ns = {"fh": FH_NS} if self.info is not None and self.info.is_archive else {}
        if self.fmt is Format.RSS:
            ns["dc"] = DC_NS
        ns["media"] = MEDIA_NS
        return ns

    def extend_rss(self, feed: Any) -> Any:
        info = self.info
        assert info is not None
        channel = feed[0]
        for rel, href in _extra_links(info, Format.RSS):
            _sub(channel, f"{{{ATOM_NS}}}link", rel=rel, href=href)
        if info.is_archive:
            _sub(channel, f"{{{FH_NS}}}archive")
        return feed

    def extend_atom(self, feed: Any) -> Any:
        if self.info is not None and self.info.is_archive:
            _sub(feed, f"{{{FH_NS}}}archive")
        return feed


class _EntryExt(BaseEntryExtension):  # type: ignore[misc]
    """Entry-level additions: the image enclosure (both formats), dc:creator (RSS)."""

    item: Item | None = None
    info: FeedInfo | None = None

    def _media(self, entry: Any, img: Enclosure) -> None:
        content = _sub(entry, f"{{{MEDIA_NS}}}content", **media_content(img))
        if img.alt:
            _sub(content, f"{{{MEDIA_NS}}}description", img.alt, type="plain")
        _sub(entry, f"{{{MEDIA_NS}}}thumbnail", **media_thumbnail(img))

    def extend_rss(self, entry: Any) -> Any:
        item, info = self.item, self.info
        assert item is not None and info is not None
        if not rss_authors_with_email(item):
            for p in item.authors:
                _sub(entry, f"{{{DC_NS}}}creator", p.name)
        lang = rss_item_language(item, info)
        if lang:
            _sub(entry, f"{{{DC_NS}}}language", lang)
        if item.image is not None:
            img = item.image
            _sub(
                entry,
                "enclosure",
                url=img.url,
                length=str(img.length or 0),  # RSS Best Practices: 0 when unknown
                type=img.type,
            )
            self._media(entry, img)
        return entry

    def extend_atom(self, entry: Any) -> Any:
        item, info = self.item, self.info
        assert item is not None and info is not None
        entry.set(XML_LANG, entry_language(item, info))
        if item.image is not None:
            self._media(entry, item.image)
        if item.image is not None:
            img = item.image
            attrs = {"rel": "enclosure", "href": img.url, "type": img.type}
            if img.length:
                attrs["length"] = str(img.length)
            # Right after the alternate link feedgen wrote. feedgen builds Atom elements
            # without a namespace (the root's default namespace applies on output).
            alt = entry.find("link")
            link = etree.Element("link", attrs)
            if alt is not None:
                alt.addnext(link)
            else:  # pragma: no cover - every item has a link
                entry.append(link)
        return entry


def rss_description(item: Item) -> str:
    """RSS <description> is HTML to readers (RSS Best Practices Profile, "description"):
    the plain-text summary (or title) is HTML-escaped so "<blink>" or "&amp;" show as
    written, as they do in Atom's text summary."""
    return html.escape(item.summary or item.title, quote=False)


def rss_authors_with_email(item: Item) -> bool:
    """RSS 2.0 <author> needs an email; without one for every author, all of them go to
    dc:creator (an item should not mix both: W3C validator "DuplicateItemAuthor")."""
    return bool(item.authors) and all(p.email for p in item.authors)


def _extra_links(info: FeedInfo, fmt: Format) -> list[tuple[str, str]]:
    links: list[tuple[str, str]] = []
    if info.hub:
        links.append(("hub", info.hub))
    cur = info.current_url(fmt)
    if cur:
        links.append(("current", cur))
    nxt = info.next_archive_url(fmt)
    if nxt:
        links.append(("next-archive", nxt))
    prev = info.prev_archive_url(fmt)
    if prev:
        links.append(("prev-archive", prev))
    return links


def _generator(doc: FeedDoc, fmt: Format) -> FeedGenerator:
    info = doc.info
    fg = FeedGenerator()
    fg.register_extension("feedpub", _FeedExt, _EntryExt, atom=True, rss=True)
    ext: _FeedExt = fg.feedpub
    ext.info = info
    ext.fmt = fmt
    fg.title(info.title)
    fg.language(info.language)
    fg.generator(info.generator, version=info.generator_version, uri=info.generator_uri)
    self_url = info.self_url(fmt)
    if fmt is Format.ATOM:
        fg.id(self_url)
        fg.subtitle(info.description)
        fg.updated(info.updated)
        author: dict[str, str] = {"name": info.author.name}
        if info.author.email:
            author["email"] = info.author.email
        if info.author.uri:
            author["uri"] = info.author.uri
        fg.author(author)
        if info.icon:
            fg.icon(info.icon)
        if info.logo:
            fg.logo(info.logo)
    else:
        fg.description(info.description)
        fg.lastBuildDate(info.updated)
        if info.logo:
            fg.image(url=info.logo, title=info.title, link=info.home_url)
    # Self first, alternate last: RSS <link> is the last link() call (feedgen #122).
    fg.link(href=self_url, rel="self", type=MEDIA_TYPES[fmt])
    if fmt is Format.ATOM:
        for rel, href in _extra_links(info, fmt):
            fg.link(href=href, rel=rel)
    fg.link(href=info.home_url, rel="alternate", type="text/html")
    for item in doc.items:  # already newest first
        fe = fg.add_entry(order="append")
        fe.feedpub.item = item
        fe.feedpub.info = info
        fe.title(item.title)
        fe.link(href=item.url)  # no rel in Atom means alternate (RFC 4287 §4.2.7.2)
        fe.published(item.published)
        fe.updated(item.updated)
        for c in item.categories:
            fe.category(term=c)
        if fmt is Format.ATOM:
            fe.id(item.atom_id)
            for p in item.authors:
                a: dict[str, str] = {"name": p.name}
                if p.email:
                    a["email"] = p.email
                if p.uri:
                    a["uri"] = p.uri
                fe.author(a)
            # No blank <content> (W3C warning); an entry without content still carries
            # text: its summary, else its title (as RSS <description> does).
            if item.summary or not item.content_html:
                fe.summary(item.summary or item.title)
            if item.content_html:
                fe.content(item.content_html, type="html")
        else:
            fe.guid(item.id, permalink=item.guid_is_permalink)
            if rss_authors_with_email(item):
                for p in item.authors:
                    fe.author({"name": p.name, "email": p.email})
            fe.description(rss_description(item))
            if item.content_html:
                fe.content(item.content_html)
    return fg


def render_rss(doc: FeedDoc) -> bytes:
    data: bytes = _generator(doc, Format.RSS).rss_str(
        pretty=True, encoding="UTF-8", xml_declaration=True
    )
    return data


def render_atom(doc: FeedDoc) -> bytes:
    data: bytes = _generator(doc, Format.ATOM).atom_str(
        pretty=True, encoding="UTF-8", xml_declaration=True
    )
    return data
