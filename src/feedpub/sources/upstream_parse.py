"""The one module that wraps the upstream parsers: feedparser (RSS, Atom), the JSON
Feed reader, lxml for sitemaps and trafilatura for article pages.

It turns bytes into neutral records (:class:`UpstreamEntry`, :class:`PageData`,
sitemap URL lists) with *raw* HTML; the sources sanitize and shape them. Library
quirks handled here:

- feedparser reports ill-formed XML as ``bozo`` and still returns what its loose
  parser recovered: we keep those entries and pass the problem on as a warning.
- feedparser copies an RSS ``pubDate`` into ``updated``: an ``updated`` equal to
  ``published`` is dropped.
- feedparser marks a title ``text/html`` when it held entities; such titles are
  unescaped once (never twice: ``AT&amp;amp;T`` stays ``AT&amp;T``).
- feedparser (6.0) does not read JSON Feed: :func:`_parse_json_feed` does (jsonfeed.org 1.0, 1.1).
- trafilatura's metadata date is a day only: exact times come from the page's own
  ``article:published_time`` meta, JSON-LD ``datePublished`` or ``<time datetime>``.
"""

from __future__ import annotations

import calendar
import codecs
import gzip
import html
import io
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import feedparser
import lxml.etree as ET
import lxml.html
import trafilatura
from trafilatura.htmlprocessing import build_html_output

from feedpub.text import clean_text

_TAG = re.compile(r"<[^>]*>")
_WS = re.compile(r"\s+")


class UpstreamParseError(Exception):
    """The whole document is unusable (not a feed, not JSON, not HTML)."""


@dataclass(frozen=True, slots=True)
class UpstreamImage:
    url: str
    type: str | None = None
    length: int | None = None
    width: int | None = None  # pixels, when the feed says (Media RSS width/height)
    height: int | None = None


@dataclass(frozen=True, slots=True)
class UpstreamEntry:
    position: int  # 1-based position in the feed, for messages
    id: str | None
    link: str | None  # may be relative; resolve against the feed URL
    title: str  # plain text
    authors: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    content_html: str | None  # full content (content:encoded, Atom content, content_html)
    summary_html: str | None  # description / summary, as HTML
    tags: tuple[str, ...]
    image: UpstreamImage | None
    language: str | None
    base: str | None = None  # xml:base of the content, when the feed gave one


@dataclass(slots=True)
class UpstreamFeed:
    format: str  # "rss20", "atom10", "json1.1", ...
    title: str
    link: str | None
    language: str | None
    entries: list[UpstreamEntry] = field(default_factory=list)
    problem: str | None = None  # ill-formed XML: what the parser said
    skipped: list[str] = field(default_factory=list)  # items that could not be read at all


# --------------------------------------------------------------------------- feeds


def parse_feed(body: bytes, content_type: str, *, tz: tzinfo = UTC) -> UpstreamFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed 1.0/1.1 bytes."""
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if "json" in content_type.lower() or head.startswith(b"{"):
        return _parse_json_feed(body, tz)
    return _parse_xml_feed(body, content_type)


def _parse_xml_feed(body: bytes, content_type: str) -> UpstreamFeed:
    # No content-location: relative URLs stay relative unless xml:base says otherwise,
    # so the source can resolve them against each entry's own link.
    d = feedparser.parse(
        body,
        response_headers={"content-type": content_type or "application/xml"},
        resolve_relative_uris=False,  # done by sanitize_html against the content base
        sanitize_html=False,  # we sanitize with nh3 (feedpub.text), once
    )
    problem = None
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        name = type(exc).__name__
        if name in ("CharacterEncodingOverride", "NonXMLContentType"):
            problem = None  # harmless: the document was still read as XML
        else:
            line = getattr(exc, "getLineNumber", lambda: None)()
            col = getattr(exc, "getColumnNumber", lambda: None)()
            where = f" at line {line}, column {col}" if line else ""
            text = exc.getMessage() if hasattr(exc, "getMessage") else str(exc)
            problem = f"ill-formed XML{where}: {text}"
    version = d.get("version") or ""
    if not version and not d.entries:
        snippet = body[:80].decode("utf-8", "replace").strip()
        raise UpstreamParseError(
            f"not an RSS, Atom or JSON feed ({problem or 'no feed elements'}); it starts with {snippet!r}"
        )
    feed = d.feed
    language = _language(feed.get("language"))
    out = UpstreamFeed(
        format=version or "unknown",
        title=_line(feed.get("title", ""), feed.get("title_detail", {}).get("type")),
        link=feed.get("link"),
        language=language,
        problem=problem,
    )
    for pos, e in enumerate(d.entries, start=1):
        out.entries.append(_xml_entry(pos, e, language))
    return out


def _xml_entry(pos: int, e: Any, feed_language: str | None) -> UpstreamEntry:
    published = _struct_dt(e.get("published_parsed"))
    # dict.get: FeedParserDict maps a missing updated_parsed to published_parsed (with a
    # DeprecationWarning); an RSS pubDate is not an edit date.
    updated = _struct_dt(dict.get(e, "updated_parsed"))
    if published is None:
        published, updated = updated, None
    elif updated == published:
        updated = None
    content = None
    base = None
    for c in e.get("content") or ():
        value = c.get("value") or ""
        if value.strip():
            ctype = c.get("type") or "text/html"
            content = value if "html" in ctype else _text_to_html(value)
            base = c.get("base") or None
            break
    summary = e.get("summary") or None
    if summary is not None:
        stype = (e.get("summary_detail") or {}).get("type") or "text/html"
        if "html" not in stype:
            summary = _text_to_html(summary)
    authors: list[str] = []
    for a in e.get("authors") or ():
        name = _line(a.get("name") or "", None)
        if name and name not in authors:
            authors.append(name)
    if not authors and e.get("author"):
        authors.append(_line(e.get("author"), None))
    tags = tuple(
        dict.fromkeys(
            t
            for t in (
                _line(tag.get("label") or tag.get("term") or "", None)
                for tag in e.get("tags") or ()
            )
            if t
        )
    )
    return UpstreamEntry(
        position=pos,
        id=_clean_id(e.get("id")),
        link=_clean_id(e.get("link")),
        title=_line(e.get("title", ""), (e.get("title_detail") or {}).get("type")),
        authors=tuple(authors),
        published=published,
        updated=updated,
        content_html=content,
        summary_html=summary,
        tags=tags,
        image=_xml_image(e),
        language=_language(e.get("language")) or feed_language,
        base=base,
    )


def _xml_image(e: Any) -> UpstreamImage | None:
    for enc in e.get("enclosures") or ():
        mime = (enc.get("type") or "").lower()
        href = enc.get("href") or enc.get("url")
        if href and mime.startswith("image/"):
            return UpstreamImage(href, mime, _length(enc.get("length")))
    for m in e.get("media_content") or ():
        mime = (m.get("type") or "").lower()
        if m.get("url") and (m.get("medium") == "image" or mime.startswith("image/")):
            size = (_length(m.get("width")), _length(m.get("height")))
            length = _length(m.get("filesize") or m.get("fileSize"))  # feedparser lowercases
            return UpstreamImage(m["url"], mime or None, length, *size)
    for m in e.get("media_thumbnail") or ():
        if m.get("url"):
            return UpstreamImage(
                m["url"], None, None, _length(m.get("width")), _length(m.get("height"))
            )
    return None


def _parse_json_feed(body: bytes, tz: tzinfo) -> UpstreamFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise UpstreamParseError(f"JSON Feed is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UpstreamParseError(
            f"ill-formed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise UpstreamParseError(
            "JSON document is not a JSON Feed (no 'version' of https://jsonfeed.org/version/1.1)"
        )
    version = "json" + str(doc["version"]).rsplit("/", 1)[-1]
    language = _language(doc.get("language"))
    out = UpstreamFeed(
        format=version,
        title=_line(str(doc.get("title") or ""), None),
        link=doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else None,
        language=language,
    )
    items = doc.get("items")
    if not isinstance(items, list):
        raise UpstreamParseError("JSON Feed has no 'items' list")
    feed_authors = _json_authors(doc)
    for pos, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            out.skipped.append(f"item {pos}: not a JSON object")
            continue
        content = item.get("content_html")
        if not isinstance(content, str) or not content.strip():
            text = item.get("content_text")
            content = _text_to_html(text) if isinstance(text, str) and text.strip() else None
        summary = item.get("summary")
        image = item.get("image") or item.get("banner_image")
        img = UpstreamImage(image) if isinstance(image, str) and image else None
        if img is None:
            for att in item.get("attachments") or ():
                if (
                    isinstance(att, dict)
                    and isinstance(att.get("url"), str)
                    and str(att.get("mime_type", "")).startswith("image/")
                ):
                    img = UpstreamImage(
                        att["url"], att["mime_type"], _length(att.get("size_in_bytes"))
                    )
                    break
        published = _iso_dt(item.get("date_published"), tz)
        updated = _iso_dt(item.get("date_modified"), tz)
        if published is None:
            published, updated = updated, None
        elif updated == published:
            updated = None
        raw_id = item.get("id")
        raw_tags = item.get("tags")
        tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
        out.entries.append(
            UpstreamEntry(
                position=pos,
                id=_clean_id(str(raw_id))
                if raw_id is not None and not isinstance(raw_id, dict | list)
                else None,
                link=_clean_id(item.get("url") if isinstance(item.get("url"), str) else None)
                or _clean_id(
                    item.get("external_url") if isinstance(item.get("external_url"), str) else None
                ),
                title=_line(str(item.get("title") or ""), None),
                authors=_json_authors(item) or feed_authors,
                published=published,
                updated=updated,
                content_html=content,
                summary_html=_text_to_html(summary)
                if isinstance(summary, str) and summary
                else None,
                tags=tuple(dict.fromkeys(_line(str(t), None) for t in tags if str(t).strip())),
                image=img,
                language=_language(item.get("language")) or language,
            )
        )
    return out


def _json_authors(obj: dict[str, Any]) -> tuple[str, ...]:
    raw = obj.get("authors")
    if not isinstance(raw, list):
        raw = [obj["author"]] if isinstance(obj.get("author"), dict) else []  # JSON Feed 1.0
    names = [_line(str(a.get("name") or ""), None) for a in raw if isinstance(a, dict)]
    return tuple(dict.fromkeys(n for n in names if n))


# --------------------------------------------------------------------------- sitemaps


@dataclass(slots=True)
class Sitemap:
    urls: list[tuple[str, str | None]] = field(default_factory=list)  # (loc, lastmod)
    children: list[str] = field(default_factory=list)  # <sitemapindex> entries
    problem: str | None = None


def parse_sitemap(body: bytes, max_bytes: int) -> Sitemap:
    """Read a sitemaps.org urlset or sitemapindex (gzip allowed); recover what parses."""
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
                body = gz.read(max_bytes + 1)
        except (OSError, EOFError) as e:
            raise UpstreamParseError(f"sitemap is not valid gzip: {e}") from None
        if len(body) > max_bytes:
            raise UpstreamParseError(f"unpacked sitemap exceeds the limit of {max_bytes:,} bytes")
    parser = ET.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = ET.fromstring(body, parser)
    except ET.XMLSyntaxError as e:
        raise UpstreamParseError(f"sitemap is not XML: {e}") from None
    out = Sitemap()
    if parser.error_log:
        first = parser.error_log[0]
        out.problem = f"ill-formed XML at line {first.line}, column {first.column}: {first.message}"
    if root is None:
        raise UpstreamParseError(out.problem or "sitemap is empty")
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        local = ET.QName(el).localname
        if local not in ("url", "sitemap"):
            continue
        loc = lastmod = None
        for child in el:
            if not isinstance(child.tag, str):
                continue
            name = ET.QName(child).localname
            if name == "loc" and child.text:
                loc = child.text.strip()
            elif name == "lastmod" and child.text:
                lastmod = child.text.strip()
        if loc:
            if local == "url":
                out.urls.append((loc, lastmod))
            else:
                out.children.append(loc)
    return out


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True, slots=True)
class PageData:
    title: str
    authors: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    content_html: str  # raw extracted HTML (sanitize before use)
    description: str
    image: str | None
    canonical: str | None
    language: str | None
    tags: tuple[str, ...] = ()
    date_is_day_only: bool = False


def extract_page(body: bytes, url: str, *, content_type: str = "", tz: tzinfo = UTC) -> PageData:
    """Extract an article page: metadata from the page's own tags first, body via trafilatura."""
    # The HTTP charset wins over <meta charset> (HTML Living Standard §13.2.3.2: a
    # transport-layer encoding is "certain"); without one, lxml reads the meta tag.
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
    parser = None
    if m:
        try:
            codecs.lookup(m.group(1))
            parser = lxml.html.HTMLParser(encoding=m.group(1))
        except LookupError:
            parser = None
    if not body.strip():
        raise UpstreamParseError("the page is empty")
    try:
        tree = (
            lxml.html.document_fromstring(body, parser=parser)
            if parser is not None
            else lxml.html.document_fromstring(body)
        )
    except (ET.ParserError, ValueError, LookupError) as e:
        raise UpstreamParseError(f"not an HTML page: {e}") from None
    meta = _page_meta(tree, tz)
    doc: Any = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_images=True,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        favor_precision=True,
    )
    if doc is None or doc.body is None:
        raise UpstreamParseError("no article text found on the page")
    content = build_html_output(doc)
    content = re.sub(r"^\s*<html>\s*<body>|</body>\s*</html>\s*$", "", content).strip()
    title = meta.get("title") or (doc.title or "")
    authors: tuple[str, ...] = meta.get("authors") or ()
    if not authors and doc.author:
        authors = tuple(a.strip() for a in re.split(r";|\band\b", doc.author) if a.strip())
    published: datetime | None = meta.get("published")
    day_only = False
    if published is None and doc.date:
        try:
            published = datetime.strptime(doc.date[:10], "%Y-%m-%d").replace(tzinfo=tz)
            day_only = True
        except ValueError:
            published = None
    tags = (
        tuple(t.strip() for t in (doc.tags or []) if t.strip())
        if isinstance(doc.tags, list)
        else ()
    )
    return PageData(
        title=_line(title, None),
        authors=tuple(dict.fromkeys(_line(a, None) for a in authors if _line(a, None))),
        published=published,
        updated=meta.get("updated"),
        content_html=content,
        description=_line(meta.get("description") or doc.description or "", None),
        image=meta.get("image") or doc.image or None,
        canonical=meta.get("canonical"),
        language=_language(meta.get("language") or doc.language),
        tags=tags,
        date_is_day_only=day_only,
    )


def _page_meta(tree: Any, tz: tzinfo) -> dict[str, Any]:
    """Title, authors, dates, image and canonical from meta tags and JSON-LD."""
    out: dict[str, Any] = {}
    metas: dict[str, str] = {}
    for m in tree.iter("meta"):
        key = (m.get("property") or m.get("name") or m.get("itemprop") or "").strip().lower()
        value = m.get("content")
        if key and value and key not in metas:
            metas[key] = value.strip()
    for ld in _json_ld(tree):
        kind = ld.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(str(k).endswith(("Article", "BlogPosting", "Posting", "Report")) for k in kinds):
            continue
        if isinstance(ld.get("headline"), str):
            out.setdefault("title", ld["headline"])
        for key, name in (("datePublished", "published"), ("dateModified", "updated")):
            dt = _iso_dt(ld.get(key), tz)
            if dt:
                out.setdefault(name, dt)
        names = _ld_names(ld.get("author"))
        if names:
            out.setdefault("authors", names)
        img = ld.get("image")
        if isinstance(img, dict):
            img = img.get("url")
        elif isinstance(img, list) and img:
            img = img[0].get("url") if isinstance(img[0], dict) else img[0]
        if isinstance(img, str) and img:
            out.setdefault("image", img)
        break
    out.setdefault("title", metas.get("og:title") or "")
    if not out["title"]:
        out.pop("title")
    for key, name in (
        ("article:published_time", "published"),
        ("article:modified_time", "updated"),
    ):
        dt = _iso_dt(metas.get(key), tz)
        if dt:
            out.setdefault(name, dt)
    if "published" not in out:
        for t in tree.iter("time"):
            dt = _iso_dt(t.get("datetime"), tz)
            if dt:
                out["published"] = dt
                break
    if "authors" not in out:
        byline = metas.get("author") or metas.get("article:author")
        if byline and not byline.startswith("http"):
            out["authors"] = (byline,)
    if "image" not in out and metas.get("og:image"):
        out["image"] = metas["og:image"]
    out["description"] = metas.get("og:description") or metas.get("description")
    for link in tree.iter("link"):
        href = link.get("href")
        if (link.get("rel") or "").lower() == "canonical" and href:
            out["canonical"] = href.strip()
            break
    html_el = tree if tree.tag == "html" else tree.getroottree().getroot()
    out["language"] = html_el.get("lang")
    return out


def _json_ld(tree: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for s in tree.iter("script"):
        if (s.get("type") or "").lower() != "application/ld+json" or not s.text:
            continue
        try:
            data = json.loads(s.text)
        except json.JSONDecodeError:
            continue
        stack = data if isinstance(data, list) else [data]
        for item in stack:
            if isinstance(item, dict):
                graph = item.get("@graph")
                if isinstance(graph, list):
                    found.extend(g for g in graph if isinstance(g, dict))
                found.append(item)
    return found


def _ld_names(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    names = []
    for a in items:
        if isinstance(a, dict) and isinstance(a.get("name"), str):
            names.append(a["name"])
        elif isinstance(a, str) and not a.startswith("http"):
            names.append(a)
    return tuple(n for n in names if n.strip())


# --------------------------------------------------------------------------- helpers


def _line(value: str, mime: str | None) -> str:
    """One line of plain text. HTML-typed values: tags stripped, entities decoded once."""
    value = clean_text(value or "")
    if mime and "html" in mime:
        value = html.unescape(_TAG.sub("", value))
    return _WS.sub(" ", clean_text(value)).strip()


def _text_to_html(text: str) -> str:
    paras = [p.strip() for p in re.split(r"\n\s*\n", clean_text(text)) if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paras)


def _clean_id(value: str | None) -> str | None:
    if not value:
        return None
    v = clean_text(str(value)).strip()
    return v or None


def _language(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip().replace("_", "-")
    return v if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", v) else None


def _length(value: Any) -> int | None:
    try:
        n = int(str(value))
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _struct_dt(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError):
        return None


def _iso_dt(value: Any, tz: tzinfo) -> datetime | None:
    """RFC 3339 / ISO 8601 to an aware datetime; a value without a zone is in ``tz``."""
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip()
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)
