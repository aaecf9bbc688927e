"""A document the compiled Markdown engine panics on (markdown-it-pyrs 0.4: a Rust index
out of bounds, raised as pyo3's PanicException, a BaseException) is rendered by
markdown-it-py instead, with a warning naming the file; it never stops the collect, and a
panic anywhere else in a file's parse rejects that file alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markdown_it import MarkdownIt
from markdown_it_pyrs import MarkdownIt as RsMarkdownIt

from feedpub.collect import collect
from feedpub.errors import is_rust_panic
from feedpub.sources import folder, markdown
from feedpub.store import Store
from feedpub.types import Article

from .conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PANICS = "Intro [```\n```\n\nAfter the fence.\n"


def _articles(store: Store) -> dict[str, Article]:
    with store.read() as conn:
        return {a.slug: a for a in store.load_articles(conn)}


def _rust_panic() -> BaseException:
    try:
        RsMarkdownIt("commonmark").render(PANICS)
    except BaseException as e:
        return e
    pytest.fail(
        "markdown-it-pyrs no longer panics on this input: pick another (or drop the fallback)"
    )


def test_the_compiled_engine_still_panics_on_this_input() -> None:
    """The premise (if an upgrade fixes the panic, this says so and the fallback can go)."""
    e = _rust_panic()
    assert is_rust_panic(e)
    assert not isinstance(e, Exception)


def test_a_document_that_panics_is_rendered_by_markdown_it_py_and_reported() -> None:
    reasons: list[str] = []
    html = markdown.render(PANICS, on_fallback=reasons.append)
    expected = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(PANICS)
    assert html == expected
    assert "After the fence." in html
    assert len(reasons) == 1 and "markdown-it-py" in reasons[0] and "pyrs" in reasons[0]
    # An ordinary document takes the compiled engine and reports nothing.
    assert markdown.render("*fine*\n", on_fallback=reasons.append) == "<p><em>fine</em></p>\n"
    assert len(reasons) == 1


def test_the_collect_keeps_the_article_and_warns_with_the_file(newsroom: Newsroom) -> None:
    newsroom.write("good.md", "---\ntitle: Good\ndate: 2026-11-20 09:00\n---\nFine.\n")
    newsroom.write("odd.md", f"---\ntitle: Odd\ndate: 2026-11-20 10:00\n---\n{PANICS}")
    store = newsroom.store()
    report = collect(newsroom.config(), store, now=NOW)
    assert not report.rejected
    arts = _articles(store)
    assert set(arts) == {"good", "odd"}
    assert "After the fence." in arts["odd"].content_html
    assert any(w.startswith("odd.md:") and "markdown-it-py" in w for w in report.warnings)


def test_a_panic_elsewhere_in_a_parse_rejects_that_file_alone(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    newsroom.write("good.md", "---\ntitle: Good\ndate: 2026-11-20 09:00\n---\nFine.\n")
    newsroom.write("bad.md", "---\ntitle: Bad\ndate: 2026-11-20 10:00\n---\nBOOM here.\n")
    real = folder.markdown.render
    panic = _rust_panic()

    def render(text: str, on_fallback: object = None) -> str:
        if "BOOM" in text:
            raise panic
        return real(text)

    monkeypatch.setattr(folder.markdown, "render", render)
    store = newsroom.store()
    report = collect(newsroom.config(), store, now=NOW)
    assert [e.source for e in report.rejected] == ["bad.md"]
    assert "panicked" in str(report.rejected[0])
    assert set(_articles(store)) == {"good"}


def test_keyboard_interrupt_is_no_panic() -> None:
    assert not is_rust_panic(KeyboardInterrupt())
    assert not is_rust_panic(SystemExit(1))


def test_a_panic_inside_the_sanitizer_leaves_the_next_input_a_fresh_cleaner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feedpub import text

    sanitizer = text._sanitizer
    sanitizer.clean  # noqa: B018 - this thread's cleaner, built on first use
    panic = _rust_panic()

    def broken(_fragment: str) -> str:
        raise panic

    monkeypatch.setattr(sanitizer, "clean", broken)
    with pytest.raises(BaseException) as caught:
        text.sanitize_html("<p>x</p>", "https://news.example/")
    assert caught.value is panic
    assert sanitizer.clean is not broken
    assert text.sanitize_html('<p><a href="/a">x</a></p>', "https://news.example/") == (
        '<p><a href="https://news.example/a">x</a></p>'
    )
