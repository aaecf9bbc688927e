"""Property tests: no input text yields forbidden characters or unsafe HTML in stored fields."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from feedpub.config import FolderSourceConfig, parse_config
from feedpub.sources.base import SourceContext
from feedpub.sources.folder import FolderSource
from feedpub.text import clean_text, html_to_text, plain_line, sanitize_html, summarize, word_count

FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
BASE = "https://news.example/post/x/"
# What counts as markup (feedpub.text strips exactly this): a tag or a comment.
TAG = re.compile(r"<(?:/?[A-Za-z][^>]*|!--.*?--)>", re.S)

hostile_bits = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">j</a>',
        '<a href="JaVaScRiPt:alert(1)">j</a>',
        '<a href=" javascript:alert(1)">j</a>',
        "<iframe src='https://evil.example'></iframe>",
        "<style>body{}</style>",
        '<svg onload="x()"><circle/></svg>',
        '<div style="background:url(javascript:x)">s</div>',
        "<object data=x></object>",
        '<form action="https://evil.example"><input></form>',
        '<a href="data:text/html,<script>x</script>">d</a>',
        "\x00\x01\x0b\x1f\ufffe",
        "<!-- comment -->",
        "<p>ok &amp; fine</p>",
        "Україна ✓ 📡 عربى",
        '<a href="/rel">r</a>',
    ]
)
texts = st.lists(st.one_of(st.text(max_size=40), hostile_bits), max_size=12).map("".join)


def assert_safe_html(h: str) -> None:
    assert not FORBIDDEN.search(h)
    if not h.strip():
        return
    root = lxml_html.fragment_fromstring(h, create_parent="div")
    for el in root.iter():
        assert el.tag not in ("script", "style", "iframe", "object", "embed", "form", "svg")
        for attr, value in el.attrib.items():
            assert not attr.lower().startswith("on"), (attr, h)
            assert attr != "style"
            if attr in ("href", "src"):
                assert value.startswith(("https://", "http://", "mailto:")), (value, h)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_sanitize_html_is_always_safe(text: str) -> None:
    assert_safe_html(sanitize_html(text, BASE))


@settings(max_examples=300, deadline=None)
@given(texts)
def test_plain_fields_have_no_forbidden_chars_or_tags(text: str) -> None:
    for out in (clean_text(text), plain_line(text), summarize(sanitize_html(text, BASE))):
        assert not FORBIDDEN.search(out)
    # Markup given in the input is removed (entities are decoded once afterwards, so
    # "&lt;b&gt;" rightly becomes the text "<b>": leave "&" out of this property).
    assert not TAG.search(plain_line(text.replace("&", " ")))


CONFIG = parse_config(
    {"site": {"title": "T", "base_url": "https://news.example/", "timezone": "UTC"}},
    root=Path("/nonexistent"),
)


@settings(max_examples=60, deadline=None)
@given(title=texts, body=texts, summary=texts, author=texts)
def test_folder_article_fields_are_clean(title: str, body: str, summary: str, author: str) -> None:
    # Entities decode once into text ("&lt;b&gt;" is the title "<b>"): keep "&" out here.
    title, author = title.replace("&", " "), author.replace("&", " ")
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        # JSON strings are valid YAML scalars: any text survives into front matter.
        front = (
            f"title: {json.dumps('T ' + title)}\nsummary: {json.dumps(summary)}\n"
            f"author: {json.dumps('A ' + author)}\ndate: 2026-11-20\n"
        )
        (folder / "a.md").write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
        (folder / "b.txt").write_text(
            f"T {title}\n- A {author}\n- Nov 20\n\n{body}\n", encoding="utf-8"
        )
        cfg = CONFIG.model_copy(update={"root": folder})
        src = FolderSource(FolderSourceConfig(type="folder", path=Path(".")), "f")
        result = src.fetch(SourceContext(cfg, datetime(2026, 11, 26, tzinfo=UTC)))
        assert len(result.articles) + len(result.rejected) == 2
        for p in result.articles:
            for field in (p.title, p.summary, *p.authors, *p.tags, p.url, p.slug):
                assert not FORBIDDEN.search(field), field
            # Title and names are plain text: markup given there is removed. (A summary may
            # quote "<A>" that the body had as text; writers escape it exactly once.)
            for field in (p.title, *p.authors):
                assert not TAG.search(field), field
            assert_safe_html(p.content_html)


@settings(max_examples=25, deadline=None)
@given(title=texts, body=texts, tags=st.lists(texts, max_size=3))
def test_stored_fields_are_clean_after_collect(title: str, body: str, tags: list[str]) -> None:
    """The same property through collect and the SQLite store, read back as Articles."""
    title = title.replace("&", " ")
    from feedpub.collect import collect
    from feedpub.store import Store

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "content").mkdir()
        front = f"title: {json.dumps('T ' + title)}\ntags: {json.dumps(tags)}\ndate: 2026-11-20\n"
        (folder / "content" / "a.md").write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
        cfg = parse_config(
            {
                "site": {"title": "T", "base_url": "https://news.example/", "timezone": "UTC"},
                "store": {"url": "sqlite:///s.db"},
                "sources": [{"type": "folder", "path": "content"}],
            },
            root=folder,
        )
        store = Store(cfg.store_url)
        try:
            collect(cfg, store, now=datetime(2026, 11, 26, tzinfo=UTC))
            with store.read() as conn:
                stored = store.load_articles(conn)
        finally:
            store.close()
        for a in stored:
            for field in (a.title, a.summary, *a.authors, *a.tags, a.url, a.id):
                assert not FORBIDDEN.search(field), field
            assert not TAG.search(a.title)
            assert_safe_html(a.content_html)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(),
            hostile_bits,
            st.sampled_from(["<p>", "</p>", "<br>", "</li>", "&amp;", "&#1;", "&#x1c;", "\r\n"]),
        ),
        max_size=12,
    ).map("".join)
)
def test_word_count_counts_the_words_of_the_plain_text(fragment: str) -> None:
    assert word_count(fragment) == len(html_to_text(fragment).split())
