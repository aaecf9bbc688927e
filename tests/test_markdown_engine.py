"""The compiled Markdown renderer (markdown-it-pyrs) writes the same HTML as the pure
Python markdown-it-py it replaced, raw and after sanitizing, for the sample newsroom's
articles, generated articles and CommonMark's corner cases (bench/markdown_diff.py
prints the comparison on more)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from feedpub.sources import markdown
from feedpub.sources.frontmatter import split_front_matter
from feedpub.text import sanitize_html

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://news.example/post/x/"

TRICKY = [
    "* a\n* b\n\n  para\n* c\n\n1. x\n2. y\n   - nested\n",
    "```python\nx = '<b>'\n```\n\n    indented\n\tcode\n",
    "<div>\n*not md*\n</div>\n\n<span>*md*</span>\n",
    "&copy; &amp; &#35; &#x22; &nbsp; &bogus;\n",
    "<https://example.com/a?b=c> <mail@example.com>\n",
    "[ref] and [Ref][]\n\n[ref]: https://example.com/r 'T'\n",
    "*a **b** c* __d__ _e_f_ **unclosed\n",
    "| l | c | r |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n| `|` | \\| | x |\n",
    "Ünïcödé — “quotes” ... (c) -- --- ' \"\n",
    "line one  \nline two\\\nthree\n",
    "Title\n=====\n\nSub\n---\n\n# ATX #\n",
    '![alt *x*](/img.png "title") [link](<a b> "t")\n',
    "> quote\n> > nested\n>\n> - list in quote\n",
    "~~strike~~ ~single~ ~~~not~~~\n",
    "<!-- comment -->\n\n<script>alert(1)</script>\n\n<iframe src=x></iframe>\n",
    "[xss](javascript:alert(1)) [ok](HTTP://EXAMPLE.com)\n",
    "1) one\n2) two\n\n- [ ] task\n- [x] done\n",
    "***\n___\n- - -\n",
    "a\n<br>\nb<br/>c\n",
    "`` code with ` tick `` and `unclosed\n",
    "https://bare.example/link not linkified\n",
    "\r\n crlf\r\nline\n",
    "|no|table\n|--|\n",
    "Table\n| a |\n| - |\n| b |\n",
    "Україна ශ්‍රී ලංකා العربية 中文 *emph* **strong**\n",
]

WORDS = [
    "the",
    "war",
    "port",
    "monsoon",
    "software",
    "election",
    "budget",
    "grid",
    "tea",
    "Kremlin",
]


def generated(n: int) -> list[str]:
    rng = random.Random(n)
    out = []
    for i in range(n):
        paras = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize() + "."
            for _ in range(rng.randint(2, 6))
        ]
        paras.insert(1, f"## Part {i}")
        paras.append(f"[link](/post/other-{i}/) <em>x</em> *y* ~~z~~ `c`")
        out.append("\n\n".join(paras) + "\n")
    return out


def samples() -> list[tuple[str, str]]:
    sample = [
        (p.name, split_front_matter(p.read_text(encoding="utf-8"), p.name).body)
        for p in sorted((ROOT / "content").glob("*.md"))
    ]
    assert sample, "the sample newsroom's content/ has Markdown articles"
    return (
        sample
        + [(f"tricky{i}", t) for i, t in enumerate(TRICKY)]
        + [(f"generated{i}", t) for i, t in enumerate(generated(40))]
    )


@pytest.fixture(scope="module")
def reference() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    return md.enable(["table", "strikethrough"])


@pytest.mark.parametrize(("label", "body"), samples())
def test_compiled_renderer_writes_the_html_markdown_it_py_wrote(
    reference: MarkdownIt, label: str, body: str
) -> None:
    old = reference.render(body)
    new = markdown.render(body)
    assert sanitize_html(new, BASE) == sanitize_html(old, BASE)
    assert new == old
