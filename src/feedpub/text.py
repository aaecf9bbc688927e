"""Text hygiene every source shares: XML-safe characters, sanitized HTML with absolute
URLs, plain-text summaries, reading time and slugs.

XML 1.0 §2.2 (Char production) allows #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and
#x10000-#x10FFFF; anything else in one field makes a whole feed ill-formed.
"""

from __future__ import annotations

import functools
import html
import math
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import nh3
from slugify import slugify as _slugify

from feedpub.errors import is_rust_panic

# C0 controls and DEL separate things where they occur (vertical tab, form feed, the
# file/group/record/unit separators): each becomes a space, so words they stood between
# stay apart. Non-characters and lone surrogates carry nothing and are dropped.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FORBIDDEN = re.compile("[\ufffe\uffff\ud800-\udfff]")
_WS = re.compile(r"\s+")
# A tag starts with a letter (or "/" and a letter) right after "<" (HTML Living Standard
# §13.2.5.6, tag open state); "a < b and c > d" or "<5% ... >3%" is text, not a tag.
_TAG = re.compile(r"<(?:/?[A-Za-z][^>]*|!--.*?--)>", re.S)
# An <img> tag (it cannot contain "<", so one scan per tag: linear) and its alt text.
_IMG = re.compile(r"<img\b[^<>]*>", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
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


# Fast paths. Most text holds no control character but tab and newline, and no
# forbidden one: ``_controls`` finds that out with a few passes in C (encode, translate)
# instead of four regular-expression scans, and the functions below then return their
# argument as it is. tests/test_text_fast_paths.py checks each against its general path.
_NOT_C0_ASCII = bytes(range(0x20, 0x7F))  # deleting these from ASCII leaves C0 and DEL
_NOT_C0_UTF8 = _NOT_C0_ASCII + bytes(range(0x80, 0x100))  # in UTF-8, C0 and DEL stay bytes
_FFFE_UTF8 = "\ufffe".encode()
_FFFF_UTF8 = "\uffff".encode()
# The C0 controls str.split() splits on (it splits on \x1c-\x1f too; re's \s does as well).
_SPLIT_C0 = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _controls(value: str) -> bytes | None:
    """The C0 controls and DEL of ``value`` as bytes, in order (b"" when it holds none), or
    None when it may hold a forbidden character (U+FFFE, U+FFFF or a lone surrogate)."""
    if value.isascii():
        return value.encode("ascii").translate(None, _NOT_C0_ASCII)
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    if _FFFE_UTF8 in raw or _FFFF_UTF8 in raw:  # UTF-8 is self-synchronising: no false hit
        return None
    return raw.translate(None, _NOT_C0_UTF8)


def clean_text(value: str) -> str:
    """Strip XML-forbidden characters (a control character becomes a space, anything else
    forbidden goes); normalise newlines."""
    found = _controls(value)
    if found is not None and not found.strip(b"\t\n"):
        return value
    return _clean_text(value)


def _clean_text(value: str) -> str:
    text = _CONTROL.sub(" ", value.replace("\r\n", "\n").replace("\r", "\n"))
    return _FORBIDDEN.sub("", text)


def is_clean(value: str) -> bool:
    """True when ``value`` holds no XML-forbidden character (what clean_text replaces)."""
    found = _controls(value)
    if found is not None and not found.strip(b"\t\n\r"):
        return True
    return _is_clean(value)


def _is_clean(value: str) -> bool:
    return _CONTROL.search(value) is None and _FORBIDDEN.search(value) is None


def plain_line(value: str) -> str:
    """A one-line plain-text field (title, author name) from text that may hold HTML:
    no tags, no control chars, entities decoded once, white space collapsed.
    Linear in the length of the text, whatever it holds (``"<a " * 60000`` included)."""
    if "<" not in value and "&" not in value:
        return one_line(value)  # no tag to strip, no entity to decode
    return _plain_line(value)


def _plain_line(value: str) -> str:
    text = strip_tags(clean_text(value))
    if "&" in text:
        text = html.unescape(text)
    return one_line(text)


def strip_tags(text: str) -> str:
    """``text`` without anything ``_TAG`` matches, in linear time. Removing a tag can join
    its neighbours into a new one ("<<b>b>"): then every "<" that could open a tag goes."""
    once = _strip_once(text)
    if once is text or _strip_once(once) is once:
        return once
    return _TAG_OPENERS.sub("", once)


_TAG_OPENERS = re.compile(r"<+(?=[/!A-Za-z])")


# What ``_TAG`` matches when the text holds no "<!--": a tag runs to the first ">" after it.
_OPEN_TAG = re.compile(r"</?[A-Za-z][^>]*>")


def _strip_once(text: str) -> str:
    """One left-to-right pass removing what ``_TAG`` matches (same leftmost, first-end
    matches); each search resumes where the previous one ended, so the pass is linear.
    Returns ``text`` itself when nothing was removed."""
    if "<" not in text:
        return text
    if "<!--" in text:
        return _strip_once_scan(text)
    # No comment: one regular expression does the same pass, in C. It is linear when it
    # runs only up to the last ">": every tag it tries there ends at the next ">" (a "<"
    # after the last ">" opens nothing; tried there, each would scan to the end).
    last = text.rfind(">")
    head = text[: last + 1]
    stripped, removed = _OPEN_TAG.subn("", head)
    if not removed:
        return text
    return stripped + text[last + 1 :]


def _strip_once_scan(text: str) -> str:
    """``_strip_once`` for any text (comments included), one "<" at a time."""
    if "<" not in text:
        return text
    out: list[str] = []
    n = len(text)
    i = start = 0
    gt = cm = -2  # cached next ">" and next "-->" at or after the position asked (-1: none)
    while True:
        i = text.find("<", i)
        if i < 0 or i + 1 >= n:
            break
        nxt = text[i + 1]
        end = -1
        if nxt == "!" and text.startswith("!--", i + 1):
            if cm != -1 and cm < i + 4:
                cm = text.find("-->", i + 4)
            if cm >= 0:
                end = cm + 3
        elif _is_alpha(nxt) or (nxt == "/" and i + 2 < n and _is_alpha(text[i + 2])):
            if gt != -1 and gt < i + 1:
                gt = text.find(">", i + 1)
            if gt >= 0:
                end = gt + 1
        if end < 0:
            i += 1
            continue
        out.append(text[start:i])
        i = start = end
    if start == 0:
        return text
    out.append(text[start:])
    return "".join(out)


def _is_alpha(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def one_line(value: str) -> str:
    """A one-line field from text that is already plain (stored titles): control chars
    stripped and white space collapsed; "<" and "&" are text and stay as they are."""
    # Printable text holds no control, forbidden or white space character but " ".
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value
    # str.split() splits on what re's \s matches (str.isspace, both) and drops the ends.
    return " ".join(clean_text(value).split())


def _one_line(value: str) -> str:
    return _WS.sub(" ", clean_text(value)).strip()


def absolute_url(url: str, base: str) -> str | None:
    """Resolve ``url`` against ``base``; None for schemes we never publish (javascript:, data:).
    Spaces and non-ASCII are percent-encoded (RFC 3986 §2.1; the host in IDNA form): RSS
    and many readers need URIs, not IRIs. Existing %XX escapes are kept."""
    url = clean_text(url).strip()
    if not url:
        return None
    return _resolve(base, url)


@functools.lru_cache(maxsize=4096)
def _resolve(base: str, url: str) -> str | None:
    """``absolute_url`` of a cleaned, stripped, non-empty ``url`` (the same links recur:
    the article's own address, a site's sections)."""
    try:  # "https://[oops/x": urllib raises ValueError (Invalid IPv6 URL)
        joined = urljoin(base, url)
        scheme = urlsplit(joined).scheme.lower()
        if scheme not in URL_SCHEMES:
            return None
        parts = urlsplit(joined)
        brackets = any("[" in x or "]" in x for x in (parts.path, parts.query, parts.fragment))
        out = _uri(joined) if brackets or _NOT_URI.search(joined) else joined
        urlsplit(out).port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError:
        return None
    return out


def http_url(url: str, base: str) -> str | None:
    """``url`` resolved against ``base`` when the result is an absolute http(s) URI with a
    host (an article's or image's address); None otherwise (mailto:, "https://[oops")."""
    out = absolute_url(url, base)
    return out if out is not None and is_http_uri(out) else None


_HTTP_URI = re.compile(r"https?://[^/?#\s]+[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*", re.I)


def is_http_uri(value: str) -> bool:
    """An absolute http(s) URI (RFC 3986 characters only) whose host parses."""
    if len(value) > MAX_URL_CHARS or not _HTTP_URI.fullmatch(value) or _NOT_URI.search(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError:
        return False
    rest = parts.path + parts.query + parts.fragment
    return bool(parts.hostname) and "[" not in rest and "]" not in rest


MAX_URL_CHARS = 8192


# Characters that may not appear in a URI as such (RFC 3986 §2; '%' stays: escapes are kept).
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
_SAFE_PATH = "-._~:/?#@!$&'()*+,;=%"  # "[" and "]" are for IPv6 hosts only (RFC 3986 §3.2.2)


def _uri(iri: str) -> str:
    parts = urlsplit(iri)
    netloc = parts.netloc
    if not netloc.isascii() and parts.hostname:
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(parts.hostname, safe="")
        # A function, not a template: a backslash in the host (a\1.рф) is no group reference.
        netloc = re.sub(re.escape(parts.hostname), lambda _: host, netloc, count=1, flags=re.I)
    return urlunsplit(
        (
            parts.scheme,
            quote(netloc, safe=_SAFE),
            quote(parts.path, safe=_SAFE_PATH),
            quote(parts.query, safe=_SAFE_PATH),
            quote(parts.fragment, safe=_SAFE_PATH),
        )
    )


def sanitize_html(fragment: str, base_url: str) -> str:
    """Sanitize an HTML fragment with nh3 and make every URL absolute against ``base_url``."""
    sanitizer = _sanitizer
    sanitizer.base_url = base_url
    try:
        cleaned = sanitizer.clean(cap_nesting(clean_text(fragment)))
    except BaseException as e:
        if is_rust_panic(e):  # the caller rejects this input; the next one gets a fresh cleaner
            sanitizer.renew()
        raise
    finally:
        sanitizer.base_url = ""
    return clean_text(cleaned).strip()


def _nh3_options(attribute_filter: Callable[[str, str, str], str | None]) -> dict[str, Any]:
    return {
        "tags": set(ALLOWED_TAGS),
        "clean_content_tags": {
            "script", "style", "iframe", "object", "embed", "noscript", "template"
        },
        "attributes": {k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        "attribute_filter": attribute_filter,
        "url_schemes": set(URL_SCHEMES),
        "link_rel": None,
        "strip_comments": True,
    }  # fmt: skip


class _Sanitizer(threading.local):
    """One nh3 cleaner per thread, built on the thread's first use (building one per call,
    as ``nh3.clean`` does, cost as much as cleaning a short article). Its attribute filter
    resolves URLs against ``base_url``, set by ``sanitize_html`` for each call."""

    def __init__(self) -> None:
        self.base_url = ""
        self.renew()

    def renew(self) -> None:
        """Build this thread's cleaner (again, after it panicked: its state is unknown)."""
        options = _nh3_options(self._attribute)
        cleaner = getattr(nh3, "Cleaner", None)  # nh3 < 0.2.18 has nh3.clean only
        if cleaner is not None:
            self.clean: Callable[[str], str] = cleaner(**options).clean
        else:
            self.clean = functools.partial(nh3.clean, **options)

    def _attribute(self, tag: str, attr: str, value: str) -> str | None:
        # An exception here would be printed by nh3 ("Exception ignored") and the
        # attribute kept: drop the attribute instead.
        try:
            if attr in URL_ATTRIBUTES:
                return absolute_url(value, self.base_url)
            return value
        except Exception:
            return None


_sanitizer = _Sanitizer()


# Elements nested deeper than this are flattened before sanitizing: nh3 (html5ever) takes
# time quadratic in the depth (100,000 nested <div>s: 34 s). Real articles stay under 30.
MAX_NESTING = 100
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?=[\s/>])[^<>]*(>?)")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip


# Elements a parser closes by itself when the next one opens (HTML Living Standard §13.1.2.4,
# optional end tags): "<p>a<p>b" or a list of unclosed <li> never nests.
_IMPLIED_END = frozenset(
    {"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup",
     "colgroup", "caption", "rb", "rt", "rp", "rtc"}
)  # fmt: skip


def cap_nesting(fragment: str, limit: int = MAX_NESTING) -> str:
    """``fragment`` with the start and end tags that would nest deeper than ``limit``
    removed (their text kept). Linear; a fragment that never goes that deep is returned
    unchanged."""
    if fragment.count("<") <= limit:
        return fragment
    depth = 0
    out: list[str] = []
    last = 0
    changed = False
    for m in _TAG_NAME.finditer(fragment):
        closing, name, end = m.group(1), m.group(2).lower(), m.group(3)
        if name in _VOID or name in _IMPLIED_END or (end and m.group(0).endswith("/>")):
            continue
        if closing:
            drop = depth > limit
            depth = max(0, depth - 1)
        else:
            depth += 1
            drop = depth > limit
        if drop:
            out.append(fragment[last : m.start()])
            last = m.end()
            changed = True
    if not changed:
        return fragment
    out.append(fragment[last:])
    return "".join(out)


def html_to_text(fragment: str) -> str:
    """Readable plain text of an HTML fragment (paragraphs kept apart); an image reads as
    its alt text, as a screen reader or a text-only client would read it."""
    text = _IMG.sub(_alt_text, fragment) if "<img" in fragment.lower() else fragment
    text = _BLOCK_END.sub("\n\n", text)
    text = html.unescape(_strip_once(text))
    # " ".join(p.split()) is _WS.sub(" ", p).strip(): str.split() splits on what \s matches.
    paras = [" ".join(p.split()) for p in _PARAGRAPHS.split(text)]
    return clean_text("\n\n".join(p for p in paras if p))


_PARAGRAPHS = re.compile(r"\n\s*\n")


def _alt_text(match: re.Match[str]) -> str:
    alt = _ALT.search(match.group(0))
    if alt is None:
        return " "
    value = next(g for g in alt.groups() if g is not None)
    return f" {html.escape(html.unescape(value), quote=False)} "


_HEADING = re.compile(r"<h[1-6][^>]*>.*?</h[1-6]>", re.I | re.S)


def summarize(fragment: str, limit: int = 280) -> str:
    """A plain-text summary: the first paragraphs that are not headings, cut at a word."""
    no_headings = _HEADING.sub("", fragment) if "<" in fragment else fragment
    text = " ".join(html_to_text(no_headings).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-—")
    return cut + "…"


def word_count(fragment: str) -> int:
    """The words of ``html_to_text(fragment)``, without building it: that only rearranges
    whitespace, reads images as their alt text, turns control characters into spaces and
    drops other XML-forbidden characters (a word of nothing else disappears)."""
    text = _IMG.sub(_alt_text, fragment) if "<img" in fragment.lower() else fragment
    return _words(html.unescape(_strip_once(_BLOCK_END.sub("\n\n", text))))


def _words(text: str) -> int:
    """The words of ``clean_text(text)``."""
    found = _controls(text)
    if found is not None and not found.strip(_SPLIT_C0):
        return len(text.split())  # no control that split() would not split on, no forbidden
    return _words_general(text)


def _words_general(text: str) -> int:
    words = _CONTROL.sub(" ", text).split()
    if _FORBIDDEN.search(text):
        return sum(1 for w in words if _FORBIDDEN.sub("", w))
    return len(words)


def reading_minutes(fragment: str) -> int:
    return max(1, math.ceil(word_count(fragment) / WORDS_PER_MINUTE))


@functools.lru_cache(maxsize=4096)
def slugify(text: str, fallback: str = "article") -> str:
    """ASCII slug (Cyrillic and other scripts transliterated): 'Ukraine’s Peace' -> 'ukraines-peace'.
    ``fallback`` when nothing sluggable is left (a title of emoji only)."""
    text = _APOSTROPHE.sub(r"\1\2", text)
    slug: str = _slugify(text, max_length=80, word_boundary=True)
    return slug or fallback


_APOSTROPHE = re.compile(r"(\w)['’](\w)")
