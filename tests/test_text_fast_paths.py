"""feedpub.text's fast paths (text that needs no work is returned as it is) give what the
general code gives, on text full of the characters that make the difference; a host
holding a backslash is encoded, not read as a regular-expression group reference; the
folder source's read of a file keeps its size limit."""

from __future__ import annotations

import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpub import text
from feedpub.errors import ContentError
from feedpub.sources.folder import read_text
from feedpub.text import absolute_url, http_url, sanitize_html

BASE = "https://news.example/post/x/"


def test_backslash_in_an_idn_host_is_text_not_a_group_reference() -> None:
    # "\1" in the replacement string of re.sub was a reference to a group that does not
    # exist (re.error: the whole file rejected), "\b" a backspace (%08 in the host).
    assert absolute_url("https://a\\1.рф/x", BASE) == "https://a%5C1.xn--p1ai/x"
    assert absolute_url("https://a\\b.рф/", BASE) == "https://a%5Cb.xn--p1ai/"
    assert absolute_url("https://x\\g<0>.рф/", BASE) == "https://x%5Cg%3C0%3E.xn--p1ai/"
    assert http_url("https://a\\1.рф/x", BASE) == "https://a%5C1.xn--p1ai/x"
    html = sanitize_html('<a href="https://a\\1.рф/x">a</a>', BASE)
    assert html == '<a href="https://a%5C1.xn--p1ai/x">a</a>'


# The characters where a fast path could go wrong: every kind of white space (NBSP, the
# separators \x1c-\x1f that str.split() splits on, \x85, \u2028), controls that become
# spaces, forbidden ones that go (U+FFFE, lone surrogates), CR LF, combining marks,
# emoji, entities and markup.
PIECES = [
    "a", "Zz", "word", " ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d",
    "\x1e", "\x1f", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\xa0", "\u1680", "\u2000",
    "\u2028", "\u2029", "\u202f", "\u3000", "\u200b", "\u180e", "\ufeff", "\ufffe", "\uffff",
    "\ud800", "\udfff", "e\u0301", "\u0301", "😀", "👩‍👩‍👧", "Київ", "ß", "İ", "’", "'", "&amp;",
    "&", "&lt;b&gt;", "&#10;", "&nbsp;", "<", ">", "<b>", "</b>", "<p>", "</p>", "<br>",
    "<br/>", "<!--", "-->", "<!-- x -->", "<a href='x'>", "<img src=x alt='A &amp; B'>",
    "<h2>", "</h2>", "</div>", "<<b>b>", "<5", "</", "<!", "-", "/", "\\",
]  # fmt: skip
# Text that takes the fast paths is mostly printable: half the examples are.
PRINTABLE = [p for p in PIECES if p.isprintable()] + [" ", "  "]
texts = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=30),
    st.lists(st.sampled_from(PRINTABLE), max_size=12),
).map("".join)
EXAMPLES = settings(max_examples=400, deadline=None)


@EXAMPLES
@given(texts)
def test_controls_lists_c0_and_del_or_says_forbidden(value: str) -> None:
    found = text._controls(value)
    if text._FORBIDDEN.search(value):
        assert found is None
    else:
        assert found == "".join(re.findall("[\x00-\x1f\x7f]", value)).encode("ascii")


@EXAMPLES
@given(texts)
def test_clean_text_fast_path(value: str) -> None:
    assert text.clean_text(value) == text._clean_text(value)
    assert text.is_clean(value) is text._is_clean(value)


@EXAMPLES
@given(texts)
def test_one_line_and_plain_line_fast_paths(value: str) -> None:
    assert text.one_line(value) == text._one_line(value)
    assert text.plain_line(value) == text._plain_line(value)


@EXAMPLES
@given(texts)
def test_strip_once_fast_path(value: str) -> None:
    fast, scan = text._strip_once(value), text._strip_once_scan(value)
    assert fast == scan
    # "Nothing removed" is told by identity (strip_tags relies on it).
    assert (fast is value) is (scan is value)
    assert text.strip_tags(value) == _strip_tags_general(value)


def _strip_tags_general(value: str) -> str:
    once = text._strip_once_scan(value)
    if once is value or text._strip_once_scan(once) is once:
        return once
    return text._TAG_OPENERS.sub("", once)


@EXAMPLES
@given(texts)
def test_word_count_fast_path(value: str) -> None:
    assert text._words(value) == text._words_general(value)
    assert text._words(value) == len(text.clean_text(value).split())
    assert text.word_count(value) == len(text.html_to_text(value).split())


def test_split_and_strip_are_the_white_space_of_the_regex() -> None:
    # " ".join(s.split()) stands for _WS.sub(" ", s).strip() (html_to_text, summarize,
    # one_line): both split on the same characters, every code point checked.
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    space = {c for c in every if c.isspace()}
    assert set(re.findall(r"\s", every)) == space
    assert {c for c in every if not c.strip()} == space
    assert "\x1c" in space and "\xa0" in space and "\u2028" in space
    # one_line's shortcut: printable text holds no white space but " ".
    assert {c for c in space if c.isprintable()} == {" "}
    sample = "".join(sorted(space)) + "a" + "\x1f\u3000 b\xa0\xa0c\u2028"
    assert " ".join(sample.split()) == text._WS.sub(" ", sample).strip() == "a b c"


@EXAMPLES
@given(texts)
def test_html_to_text_and_summarize_collapse_white_space_as_before(value: str) -> None:
    paras = [text._WS.sub(" ", p).strip() for p in re.split(r"\n\s*\n", value)]
    assert [" ".join(p.split()) for p in text._PARAGRAPHS.split(value)] == paras
    summary = text.summarize(value, limit=10_000)
    plain = text.html_to_text(re.sub(r"<h[1-6][^>]*>.*?</h[1-6]>", "", value, flags=re.I | re.S))
    assert summary == text._WS.sub(" ", plain.replace("\n\n", " ")).strip()


URLS = [
    "", " ", "/x", "rel", "../up", "x y", "#f", "?q=1", "https://ex.com/a", "HTTPS://EX.COM/A",
    "https://Ex.com/ä b?q=ü#f", "https://пример.рф/п", "https://a\\1.рф/", "//cdn.ex/y",
    "javascript:alert(1)", " JaVaScRiPt:x", "data:text/html,x", "mailto:a@b.c", "https:foo",
    "https://[oops/x", "https://x:99999/", "http://x/[y]", "https://x/%41%zz", "ftp://x/",
]  # fmt: skip
BASES = ["https://news.example/post/a/", "https://news.example/", "http://x.test/a/b?c#d"]
urls = st.one_of(st.sampled_from(URLS), st.tuples(st.sampled_from(URLS), texts).map("".join))


def _absolute_url_uncached(url: str, base: str) -> str | None:
    url = text.clean_text(url).strip()
    return text._resolve.__wrapped__(base, url) if url else None


@EXAMPLES
@given(urls, st.sampled_from(BASES))
def test_absolute_url_cache_gives_what_resolving_gives(url: str, base: str) -> None:
    expected = _absolute_url_uncached(url, base)
    assert text.absolute_url(url, base) == expected
    assert text.absolute_url(url, base) == expected  # from the cache this time


@EXAMPLES
@given(texts, texts)
def test_slugify_cache_gives_what_slugifying_gives(value: str, fallback: str) -> None:
    assert text.slugify(value) == text.slugify.__wrapped__(value)
    assert text.slugify(value, fallback) == text.slugify.__wrapped__(value, fallback)


def _sanitize_general(fragment: str, base: str) -> str:
    """sanitize_html as it was: nh3.clean with the options (and a new filter) on each call."""

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr in text.URL_ATTRIBUTES:
            return _absolute_url_uncached(value, base)
        return value

    options = text._nh3_options(attribute_filter)
    cleaned = nh3.clean(text.cap_nesting(text.clean_text(fragment)), **options)
    return text.clean_text(cleaned).strip()


html_bits = st.one_of(
    texts,
    st.sampled_from(["<p>", "</p>", "</a>", "<div>", "</div>", "<script>x()</script>"]),
    urls.map(lambda u: f"<a href='{u}' title=t onclick=x>"),
    urls.map(lambda u: f'<img src="{u}" alt="a &amp; b" width=3>'),
    urls.map(lambda u: f'<blockquote cite="{u}">q</blockquote>'),
)
fragments = st.lists(html_bits, max_size=15).map("".join)


@settings(max_examples=200, deadline=None)
@given(fragments, st.sampled_from(BASES))
def test_one_cleaner_per_thread_sanitizes_as_a_cleaner_per_call(fragment: str, base: str) -> None:
    assert sanitize_html(fragment, base) == _sanitize_general(fragment, base)


def test_threads_sanitizing_at_once_keep_their_own_base() -> None:
    fragment = '<p><a href="/a">a</a> <img src="b.png"> <q cite="../c">c</q></p>' * 50
    bases = [f"https://news.example/post/{i}/" for i in range(8)]
    expected = {base: _sanitize_general(fragment, base) for base in bases}
    assert len(set(expected.values())) == len(bases)  # each base gives other links
    start = threading.Barrier(len(bases))

    def work(base: str) -> list[str]:
        start.wait()
        return [sanitize_html(fragment, base) for _ in range(30)]

    with ThreadPoolExecutor(len(bases)) as pool:
        results = dict(zip(bases, pool.map(work, bases), strict=True))
    for base in bases:
        assert results[base] == [expected[base]] * 30


# The folder source reads a file with one read of the size it has (not of the limit):
# the limit and a file that is longer than its size said still behave as before.


def test_read_text_takes_a_file_up_to_the_limit_and_refuses_one_byte_more(tmp_path: Path) -> None:
    at_limit = tmp_path / "at.md"
    at_limit.write_bytes(b"x" * 1000)
    assert read_text(at_limit, "at.md", max_bytes=1000) == "x" * 1000
    over = tmp_path / "over.md"
    over.write_bytes(b"x" * 1001)
    with pytest.raises(ContentError, match="bigger than 1,000 bytes"):
        read_text(over, "over.md", max_bytes=1000)


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux /proc")
def test_read_text_reads_on_past_the_size_the_file_said(tmp_path: Path) -> None:
    # /proc files say they are empty (st_size 0) and hold text.
    proc = Path("/proc/version")
    assert proc.stat().st_size == 0
    whole = proc.read_text(encoding="utf-8")
    assert len(whole) > 20
    assert read_text(proc, "version") == whole
    assert read_text(proc, "version", max_bytes=len(whole)) == whole
    with pytest.raises(ContentError, match="bigger than"):
        read_text(proc, "version", max_bytes=len(whole) - 1)
