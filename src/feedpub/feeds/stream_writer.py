"""A fast streaming writer for RSS 2.0 and Atom 1.0, used for RFC 5005 archive pages
(and for everything when ``[output] writer = "stream"``).

feedgen builds a whole lxml tree per feed (~6,000 items/s per format, memory grows with
the feed). This writer emits the same elements as :mod:`feedpub.feeds.feedgen_writer`
as escaped text, item by item, into a list of chunks; tests check both parse to the
same structure. Text is escaped exactly once (XML 1.0 §2.4); the plan already removed
characters XML forbids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from feedpub.feeds.feedgen_writer import (
    ATOM_NS,
    DC_NS,
    FH_NS,
    MEDIA_NS,
    entry_language,
    media_content,
    media_thumbnail,
    rfc822,
    rss_authors_with_email,
    rss_description,
    rss_item_language,
)
from feedpub.feeds.model import MEDIA_TYPES, Enclosure, FeedDoc, FeedInfo, Format, Item

CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"


# Characters XML 1.0 does not allow (§2.2). The plan cleans an item's text; the fields
# below it takes as stored (an article stored by an older version can hold one): such an
# item is refused, as the feedgen writer (lxml) refuses it, and left out by feeds.guard.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _refuse_unclean(item: Item) -> None:
    fields = [item.id, item.atom_id, item.url, item.language or "", *item.categories]
    for p in item.authors:
        fields += (p.name, p.email or "", p.uri or "")
    if item.image is not None:
        fields += (item.image.url, item.image.type, item.image.alt or "")
    bad = _NOT_XML.search(" ".join(fields))
    if bad is not None:
        raise ValueError(f"character U+{ord(bad.group()):04X} is not allowed in XML")


def _t(s: str) -> str:
    # str.replace is several times faster than str.translate on long content.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _a(s: str) -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    if "\n" in s or "\t" in s or "\r" in s:
        s = s.replace("\n", "&#10;").replace("\t", "&#9;").replace("\r", "&#13;")
    return s


def _links(info: FeedInfo, fmt: Format) -> Iterator[tuple[str, str]]:
    if info.hub:
        yield "hub", info.hub
    cur = info.current_url(fmt)
    if cur:
        yield "current", cur
    nxt = info.next_archive_url(fmt)
    if nxt:
        yield "next-archive", nxt
    prev = info.prev_archive_url(fmt)
    if prev:
        yield "prev-archive", prev


def _media(img: Enclosure, indent: str) -> str:
    content = " ".join(f'{k}="{_a(v)}"' for k, v in media_content(img).items())
    thumb = " ".join(f'{k}="{_a(v)}"' for k, v in media_thumbnail(img).items())
    if img.alt:
        out = (
            f"{indent}<media:content {content}>\n"
            f'{indent}  <media:description type="plain">{_t(img.alt)}</media:description>\n'
            f"{indent}</media:content>\n"
        )
    else:
        out = f"{indent}<media:content {content}/>\n"
    return out + f"{indent}<media:thumbnail {thumb}/>\n"


# ---- RSS 2.0 ------------------------------------------------------------------------------


def _rss_item(item: Item, info: FeedInfo) -> str:
    _refuse_unclean(item)
    out = ["    <item>\n", f"      <title>{_t(item.title)}</title>\n"]
    out.append(f"      <link>{_t(item.url)}</link>\n")
    out.append(f"      <description>{_t(rss_description(item))}</description>\n")
    if item.content_html:
        out.append(f"      <content:encoded>{_t(item.content_html)}</content:encoded>\n")
    with_email = rss_authors_with_email(item)
    if with_email:
        for p in item.authors:
            out.append(f"      <author>{_t(p.email or '')} ({_t(p.name)})</author>\n")
    perma = "true" if item.guid_is_permalink else "false"
    out.append(f'      <guid isPermaLink="{perma}">{_t(item.id)}</guid>\n')
    for c in item.categories:
        out.append(f"      <category>{_t(c)}</category>\n")
    out.append(f"      <pubDate>{rfc822(item.published)}</pubDate>\n")
    if not with_email:
        for p in item.authors:
            out.append(f"      <dc:creator>{_t(p.name)}</dc:creator>\n")
    lang = rss_item_language(item, info)
    if lang:
        out.append(f"      <dc:language>{_t(lang)}</dc:language>\n")
    if item.image is not None:
        img = item.image
        out.append(
            f'      <enclosure url="{_a(img.url)}" length="{img.length or 0}" '
            f'type="{_a(img.type)}"/>\n'
        )
        out.append(_media(img, "      "))
    out.append("    </item>\n")
    return "".join(out)


RSS_TAIL = "  </channel>\n</rss>\n"
ATOM_TAIL = "</feed>\n"


def rss_item(item: Item, info: FeedInfo) -> str:
    """One ``<item>``: the same in every RSS document in ``info.language`` (all it reads)."""
    return _rss_item(item, info)


def atom_entry(item: Item, info: FeedInfo) -> str:
    """One ``<entry>``: the same in every Atom document in ``info.language``."""
    return _atom_item(item, info)


def render_rss(doc: FeedDoc) -> bytes:
    info = doc.info
    out = [rss_head(info)]
    out.extend(_rss_item(i, info) for i in doc.items)
    out.append(RSS_TAIL)
    return "".join(out).encode("utf-8")


def rss_head(info: FeedInfo) -> str:
    """An RSS document up to its first ``<item>``."""
    ns = f' xmlns:fh="{FH_NS}"' if info.is_archive else ""
    ns += f' xmlns:dc="{DC_NS}" xmlns:media="{MEDIA_NS}" xmlns:atom="{ATOM_NS}"'
    ns += f' xmlns:content="{CONTENT_NS}"'
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f'<rss{ns} version="2.0">\n',
        "  <channel>\n",
        f"    <title>{_t(info.title)}</title>\n",
        f"    <link>{_t(info.home_url)}</link>\n",
        f"    <description>{_t(info.description)}</description>\n",
        f'    <atom:link href="{_a(info.self_url(Format.RSS))}" rel="self" '
        f'type="{MEDIA_TYPES[Format.RSS]}"/>\n',
        "    <docs>http://www.rssboard.org/rss-specification</docs>\n",
        f"    <generator>{_t(info.generator)}</generator>\n",
    ]
    if info.logo:
        out.append(
            f"    <image>\n      <url>{_t(info.logo)}</url>\n      <title>{_t(info.title)}"
            f"</title>\n      <link>{_t(info.home_url)}</link>\n    </image>\n"
        )
    out.append(f"    <language>{_t(info.language)}</language>\n")
    out.append(f"    <lastBuildDate>{rfc822(info.updated)}</lastBuildDate>\n")
    for rel, href in _links(info, Format.RSS):
        out.append(f'    <atom:link rel="{rel}" href="{_a(href)}"/>\n')
    if info.is_archive:
        out.append("    <fh:archive/>\n")
    return "".join(out)


# ---- Atom 1.0 (RFC 4287) --------------------------------------------------------------------


def _atom_item(item: Item, info: FeedInfo) -> str:
    _refuse_unclean(item)
    out = [
        f'  <entry xml:lang="{_a(entry_language(item, info))}">\n',
        f"    <id>{_t(item.atom_id)}</id>\n",
        f"    <title>{_t(item.title)}</title>\n",
        f"    <updated>{item.updated.isoformat()}</updated>\n",
    ]
    for p in item.authors:
        out.append(f"    <author>\n      <name>{_t(p.name)}</name>\n")
        if p.email:
            out.append(f"      <email>{_t(p.email)}</email>\n")
        if p.uri:
            out.append(f"      <uri>{_t(p.uri)}</uri>\n")
        out.append("    </author>\n")
    if item.content_html:  # no blank <content> (W3C warning): the summary stands in
        out.append(f'    <content type="html">{_t(item.content_html)}</content>\n')
    out.append(f'    <link href="{_a(item.url)}"/>\n')
    if item.image is not None:
        img = item.image
        length = f' length="{img.length}"' if img.length else ""
        out.append(
            f'    <link rel="enclosure" href="{_a(img.url)}" type="{_a(img.type)}"{length}/>\n'
        )
    if item.summary or not item.content_html:
        out.append(f"    <summary>{_t(item.summary or item.title)}</summary>\n")
    for c in item.categories:
        out.append(f'    <category term="{_a(c)}"/>\n')
    out.append(f"    <published>{item.published.isoformat()}</published>\n")
    if item.image is not None:
        out.append(_media(item.image, "    "))
    out.append("  </entry>\n")
    return "".join(out)


def render_atom(doc: FeedDoc) -> bytes:
    info = doc.info
    out = [atom_head(info)]
    out.extend(_atom_item(i, info) for i in doc.items)
    out.append(ATOM_TAIL)
    return "".join(out).encode("utf-8")


def atom_head(info: FeedInfo) -> str:
    """An Atom document up to its first ``<entry>``."""
    ns = f' xmlns:fh="{FH_NS}"' if info.is_archive else ""
    lang = _a(info.language)
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f'<feed{ns} xmlns:media="{MEDIA_NS}" xmlns="{ATOM_NS}" xml:lang="{lang}">\n',
        f"  <id>{_t(info.self_url(Format.ATOM))}</id>\n",
        f"  <title>{_t(info.title)}</title>\n",
        f"  <updated>{info.updated.isoformat()}</updated>\n",
        f"  <author>\n    <name>{_t(info.author.name)}</name>\n",
    ]
    if info.author.email:
        out.append(f"    <email>{_t(info.author.email)}</email>\n")
    if info.author.uri:
        out.append(f"    <uri>{_t(info.author.uri)}</uri>\n")
    out.append("  </author>\n")
    out.append(
        f'  <link href="{_a(info.self_url(Format.ATOM))}" rel="self" '
        f'type="{MEDIA_TYPES[Format.ATOM]}"/>\n'
    )
    for rel, href in _links(info, Format.ATOM):
        out.append(f'  <link href="{_a(href)}" rel="{rel}"/>\n')
    out.append(f'  <link href="{_a(info.home_url)}" rel="alternate" type="text/html"/>\n')
    out.append(
        f'  <generator uri="{_a(info.generator_uri)}" version="{_a(info.generator_version)}">'
        f"{_t(info.generator)}</generator>\n"
    )
    if info.icon:
        out.append(f"  <icon>{_t(info.icon)}</icon>\n")
    if info.logo:
        out.append(f"  <logo>{_t(info.logo)}</logo>\n")
    out.append(f"  <subtitle>{_t(info.description)}</subtitle>\n")
    if info.is_archive:
        out.append("  <fh:archive/>\n")
    return "".join(out)
