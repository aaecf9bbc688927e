"""Text hygiene every source shares: XML-safe characters, sanitized HTML with absolute
URLs, plain-text summaries, reading time and slugs.

XML 1.0 §2.2 (Char production) allows #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and
#x10000-#x10FFFF; anything else in one field makes a whole feed ill-formed.
"""

from __future__ import annotations

import html
import math
import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import nh3
from slugify import slugify as _slugify

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_WS = re.compile(r"\s+")
# A tag starts with a letter (or "/" and a letter) right after "<" (HTML Living Standard
# §13.2.5.6, tag open state); "a < b and c > d" or "<5% ... >3%" is text, not a tag.
_TAG = re.compile(r"<(?:/?[A-Za-z][^>]*|!--.*?--)>", re.S)
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|blockquote|pre|tr|figure)>|<br\s*/?>", re.I)

WORDS_PER_MINUTE = 230

# Tags kept in article HTML. nh3's defaults minus page-structure and legacy tags, plus
# figure/figcaption. Script, style, iframe, object, embed and form are never allowed.
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
        "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
        "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary",
        "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "hreflang", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}
URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def clean_text(value: str) -> str:
    """Strip XML-forbidden characters; normalise newlines."""
    return _FORBIDDEN.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def plain_line(value: str) -> str:
    """A one-line plain-text field (title, author name) from text that may hold HTML:
    no tags, no control chars, entities decoded once, white space collapsed."""
    text = clean_text(value)
    while "<" in text:  # to a fixpoint: "<<b>b>" leaves "<b>" after one pass
        stripped = _TAG.sub("", text)
        if stripped == text:
            break
        text = stripped
    if "&" in text:
        text = html.unescape(text)
    return one_line(text)


def one_line(value: str) -> str:
    """A one-line field from text that is already plain (stored titles): control chars
    stripped and white space collapsed; "<" and "&" are text and stay as they are."""
    return _WS.sub(" ", clean_text(value)).strip()


def absolute_url(url: str, base: str) -> str | None:
    """Resolve ``url`` against ``base``; None for schemes we never publish (javascript:, data:).
    Spaces and non-ASCII are percent-encoded (RFC 3986 §2.1; the host in IDNA form): RSS
    and many readers need URIs, not IRIs. Existing %XX escapes are kept."""
    url = clean_text(url).strip()
    if not url:
        return None
    joined = urljoin(base, url)
    scheme = urlsplit(joined).scheme.lower()
    if scheme not in URL_SCHEMES:
        return None
    return _uri(joined) if _NOT_URI.search(joined) else joined


# Characters that may not appear in a URI as such (RFC 3986 §2; '%' stays: escapes are kept).
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


def _uri(iri: str) -> str:
    parts = urlsplit(iri)
    netloc = parts.netloc
    if not netloc.isascii() and parts.hostname:
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(parts.hostname, safe="")
        netloc = re.sub(re.escape(parts.hostname), host, netloc, count=1, flags=re.I)
    return urlunsplit(
        (
            parts.scheme,
            quote(netloc, safe=_SAFE),
            quote(parts.path, safe=_SAFE),
            quote(parts.query, safe=_SAFE),
            quote(parts.fragment, safe=_SAFE),
        )
    )


def sanitize_html(fragment: str, base_url: str) -> str:
    """Sanitize an HTML fragment with nh3 and make every URL absolute against ``base_url``."""

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr in URL_ATTRIBUTES:
            return absolute_url(value, base_url)
        return value

    cleaned = nh3.clean(
        clean_text(fragment),
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style", "iframe", "object", "embed", "noscript", "template"},
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
        strip_comments=True,
    )
    return clean_text(cleaned).strip()


def html_to_text(fragment: str) -> str:
    """Readable plain text of an HTML fragment (paragraphs kept apart)."""
    text = _BLOCK_END.sub("\n\n", fragment)
    text = html.unescape(_TAG.sub("", text))
    paras = [_WS.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return clean_text("\n\n".join(p for p in paras if p))


def summarize(fragment: str, limit: int = 280) -> str:
    """A plain-text summary: the first paragraphs that are not headings, cut at a word."""
    no_headings = re.sub(r"<h[1-6][^>]*>.*?</h[1-6]>", "", fragment, flags=re.I | re.S)
    text = html_to_text(no_headings).replace("\n\n", " ")
    text = _WS.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-—")
    return cut + "…"


def word_count(fragment: str) -> int:
    """The words of ``html_to_text(fragment)``, without building it: that only rearranges
    whitespace and drops XML-forbidden characters (a word of nothing else disappears)."""
    text = html.unescape(_TAG.sub("", _BLOCK_END.sub("\n\n", fragment)))
    words = text.split()
    if _FORBIDDEN.search(text):
        return sum(1 for w in words if _FORBIDDEN.sub("", w))
    return len(words)


def reading_minutes(fragment: str) -> int:
    return max(1, math.ceil(word_count(fragment) / WORDS_PER_MINUTE))


def slugify(text: str, fallback: str = "article") -> str:
    """ASCII slug (Cyrillic and other scripts transliterated): 'Ukraine’s Peace' -> 'ukraines-peace'.
    ``fallback`` when nothing sluggable is left (a title of emoji only)."""
    text = re.sub(r"(\w)['’](\w)", r"\1\2", text)
    return _slugify(text, max_length=80, word_boundary=True) or fallback
