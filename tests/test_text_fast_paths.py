"""feedpub.text's fast paths (text that needs no work is returned as it is) give what the
general code gives, on text full of the characters that make the difference; and a host
holding a backslash is encoded, not read as a regular-expression group reference."""

from __future__ import annotations

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
