"""Fuzz target: the folder source (front matter + Markdown/HTML), the pasted ``.txt``
reader and the text cleaner, fed hostile and careless inputs (issue 11).

What must hold for every input:
* no exception escapes but the project's rejection (``ContentError``, one file each);
  a source-level error or any other exception is a *crash*;
* in every stored field: no XML-forbidden character; in the article HTML no ``<script``,
  no ``on*=`` attribute, no ``javascript:`` URL, every href/src http(s) or mailto:;
  one-line fields on one line; every URL field (``url``, ``image.url``) a valid absolute
  http(s) URI (checked with an RFC 3986 pattern of its own, not the code under test);
  dates that can be written in UTC. A failure of any of these is an *unsafe output*.

``tests/test_fuzz_content.py`` runs it with a small budget in the suite;
``make fuzz MINUTES=10`` runs it for ten minutes and prints
``inputs=… inputs/s=… crashes=… unsafe_outputs=…``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from feedpub.config import FolderSourceConfig, parse_config
from feedpub.errors import ContentError
from feedpub.sources.base import SourceContext
from feedpub.sources.folder import FolderSource
from feedpub.text import clean_text, plain_line, sanitize_html, summarize
from feedpub.types import ParsedArticle

try:
    from feedpub.sources.boundary import screen_result
except ImportError:  # an older feedpub (bench: the fuzz figures before the boundary existed)
    screen_result = None  # type: ignore[assignment]

FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# RFC 3986 absolute URI, http(s) only: scheme "://" authority path-abempty [? query] [# fragment]
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)"
URI = re.compile(
    rf"https?://(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{{2}})*@)?{_HOST}(?::[0-9]*)?"
    rf"(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?",
    re.I,
)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CONFIG = parse_config(
    {
        "site": {
            "title": "T",
            "base_url": "https://news.example/",
            "timezone": "Asia/Colombo",
            "article_path": "post/{slug}/",
        },
        "beats": [{"slug": "world", "title": "World"}],
    },
    root=Path("/nonexistent"),
)

# ---- inputs -----------------------------------------------------------------------------
HOSTILE_VALUES = [
    "9999-12-31 23:59:59-12:00", "0001-01-01 00:00", "2026-02-30", "2026-13-01",
    '"2026-11-20 09:30 +99:00"', "'2026-10'", "20/1/6", "2026-11-20 09:30", "Nov 20, 2026",
    "'https://[oops/x'", "'http://[x'", "mailto:a@b", "javascript:alert(1)", "/rel/path",
    "'https://ok.example/a b'", "'//evil.example/x'", "data:text/html,x", "'http://:99999/'",
    '"urn:x\\x01y"', '"s\\x02lug"', "'x\"'", "'two words'", '"\\u2028line\\u0085sep"',
    "{url: /a.jpg, type: \"image/jpeg\\x03\"}", "{url: 'http://[x', alt: '<b>x</b>'}",
    "{url: /a.jpg, width: -1}", "[a, [b, [c]]]", "&a [1, 2]", "*a", "!!binary aGk=",
    "!!python/object:os.system ls", "~", "true", "0x1F", "1e400", "-.inf", ".nan",
    "'<script>alert(1)</script>'", "'<img src=x onerror=alert(1)>'", "''", "' '",
    "[" * 30 + "]" * 30, "{" * 30 + "}" * 30, "'<a '" , "'<!--'",
]  # fmt: skip
KEYS = [
    "title", "author", "authors", "date", "updated", "beat", "tags", "summary", "image",
    "slug", "url", "id", "draft", "language", "lang", "x", "date ", "?",
]  # fmt: skip
HTML_BITS = [
    "<script>alert(1)</script>", '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">j</a>', '<a href=" JaVaScRiPt:alert(1)">j</a>',
    '<a href="http://[x">v6</a>', '<img src="[">', '<a href="mailto:a@b">m</a>',
    "<iframe src='https://evil.example'></iframe>", "<style>b{}</style>",
    '<svg onload="x()"><circle/></svg>', '<a href="data:text/html,<script>x</script>">d</a>',
    "<div>" * 150 + "deep" + "</div>" * 150, "<a " * 50, "<!--" * 50, "<<b>b>",
    "\x00\x01\x0b\x1f\ufffe", "# Heading\n", "[link](javascript:alert(1))",
    "![img](http://[x)", "<https://auto.example/link>", "```\ncode\n```", "&lt;script&gt;",
    "Україна ✓ 📡 عربى", "\u2028\u0085", "- Feb 15\n", "- 2 min read\n", "Comments\n",
    "I. Kalupahana is a reporter covering Russia-Ukraine war\n",
]  # fmt: skip

values = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.text(max_size=30).map(json.dumps),  # any text, as a YAML double-quoted scalar
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),  # raw, often broken YAML
)
front_matter = st.dictionaries(st.sampled_from(KEYS), values, max_size=8).map(
    lambda d: "".join(f"{k}: {v}\n" for k, v in d.items())
)
bodies = st.lists(st.one_of(st.sampled_from(HTML_BITS), st.text(max_size=40)), max_size=10).map(
    "".join
)
pasted = st.tuples(
    st.text(max_size=40), st.lists(st.sampled_from([*HTML_BITS, "- A Name", ""]), max_size=6)
).map(lambda t: t[0] + "\n" + "\n".join(t[1]))


@st.composite
def content_file(draw: st.DrawFn) -> tuple[str, str]:
    suffix = draw(st.sampled_from([".md", ".html", ".txt", ".markdown"]))
    if suffix == ".txt" and draw(st.booleans()):
        return suffix, draw(pasted) + "\n" + draw(bodies)
    if draw(st.integers(0, 9)) == 0:
        return suffix, draw(st.text(max_size=200))  # no front matter at all
    title = "" if draw(st.integers(0, 4)) == 0 else "title: " + draw(values) + "\n"
    return suffix, f"---\n{title}{draw(front_matter)}---\n{draw(bodies)}\n"


folders = st.lists(content_file(), min_size=1, max_size=3)

# ---- checks -----------------------------------------------------------------------------


def unsafe_html(h: str) -> str | None:
    if FORBIDDEN.search(h):
        return "forbidden character in content_html"
    if "<script" in h.lower():
        return "<script in content_html"
    if not h.strip():
        return None
    root = lxml_html.fragment_fromstring(h, create_parent="div")
    for el in root.iter():
        if el.tag in ("script", "style", "iframe", "object", "embed", "form", "svg"):
            return f"<{el.tag}> element in content_html"
        for attr, value in el.attrib.items():
            if attr.lower().startswith("on"):
                return f"{attr}= attribute in content_html"
            if "javascript:" in value.lower().replace(" ", ""):
                return "javascript: in content_html"
            if attr in ("href", "src", "cite") and not (
                URI.fullmatch(value) or value.startswith("mailto:")
            ):
                return f"{attr}={value!r} is neither an http(s) URI nor mailto:"
    return None


def unsafe_article(a: ParsedArticle) -> str | None:
    one_line = [a.title, a.url, a.slug, a.summary, *a.authors, *a.tags, a.beat, a.explicit_id]
    one_line += [a.language]
    if a.image is not None:
        one_line += [a.image.url, a.image.type, a.image.alt]
    for value in one_line:
        if value is not None and (FORBIDDEN.search(value) or "\n" in value):
            return f"control character or newline in a one-line field: {value[:80]!r}"
    for value in [*(b for _a, b, _s in a.author_bios), *a.warnings]:
        if FORBIDDEN.search(value):
            return f"forbidden character in {value[:80]!r}"
    if not a.title.strip():
        return "empty title"
    for name, url in (("url", a.url), ("image.url", a.image.url if a.image else None)):
        if url is not None and not URI.fullmatch(url):
            return f"{name} {url[:120]!r} is not an absolute http(s) URI"
    for d in (a.published, a.updated):
        if d is not None:
            try:
                d.astimezone(UTC).isoformat()
            except (OverflowError, ValueError) as e:
                return f"date {d!r} cannot be written in UTC: {e}"
    return unsafe_html(a.content_html)


@dataclass
class Tally:
    inputs: int = 0
    crashes: int = 0
    unsafe: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, detail: str, files: object) -> None:
        if kind == "crash":
            self.crashes += 1
        else:
            self.unsafe += 1
        if len(self.examples) < 20:
            self.examples.append(f"{kind}: {detail}\n  input: {files!r}"[:2000])


def check_folder(files: list[tuple[str, str]], folder: Path, tally: Tally) -> None:
    """Write ``files`` into ``folder`` (emptied first), read it as collect does, check."""
    tally.inputs += 1
    for p in folder.iterdir():
        p.unlink()
    for i, (suffix, text) in enumerate(files):
        (folder / f"f{i}{suffix}").write_text(text, encoding="utf-8", errors="surrogatepass")
    cfg = CONFIG.model_copy(update={"root": folder})
    src = FolderSource(FolderSourceConfig(type="folder", path=Path(".")), "f")
    try:
        result = src.fetch(SourceContext(cfg, NOW))
        if screen_result is not None:
            screen_result(result, cfg.site.base_url)
    except Exception:
        tally.note("crash", traceback.format_exc(limit=-3), files)
        return
    if result.status != "ok":
        tally.note("crash", f"source error: {result.error}", files)
    if len(result.articles) + len(result.rejected) + len(result.drafts) != len(files):
        tally.note("crash", "an input neither published, rejected nor a draft", files)
    for e in result.rejected:
        if not isinstance(e, ContentError) or len(str(e)) > 2000:
            tally.note("crash", f"rejection not bounded: {str(e)[:200]}", files)
    for a in result.articles:
        problem = unsafe_article(a)
        if problem:
            tally.note("unsafe", problem, files)


def check_cleaner(text: str, tally: Tally) -> None:
    tally.inputs += 1
    try:
        line = plain_line(text)
        cleaned = clean_text(text)
        h = sanitize_html(text, "https://news.example/post/x/")
        summary = summarize(h)
    except Exception:
        tally.note("crash", traceback.format_exc(limit=-3), text)
        return
    for out in (line, cleaned, summary):
        if FORBIDDEN.search(out):
            tally.note("unsafe", "forbidden character from the cleaner", text)
    problem = unsafe_html(h)
    if problem:
        tally.note("unsafe", problem, text)


def run(max_examples: int, tally: Tally, folder: Path, *, seed: int | None = None) -> None:
    """One Hypothesis pass of ``max_examples`` inputs per target (generation only: a
    failure is counted, never shrunk or replayed)."""
    opts = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )

    @opts
    @given(folders)
    def fuzz_folder(files: list[tuple[str, str]]) -> None:
        check_folder(files, folder, tally)

    @opts
    @given(bodies)
    def fuzz_cleaner(text: str) -> None:
        check_cleaner(text, tally)

    for target in (fuzz_folder, fuzz_cleaner):
        if seed is not None:
            target._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
        target()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args(argv)
    tally = Tally()
    d = Path(tempfile.mkdtemp(prefix="feedpub-fuzz-"))
    started = time.monotonic()
    deadline = started + args.minutes * 60
    try:
        while time.monotonic() < deadline:
            run(args.batch, tally, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    elapsed = time.monotonic() - started
    for ex in tally.examples:
        print(ex, file=sys.stderr)
    print(
        f"inputs={tally.inputs} inputs/s={tally.inputs / elapsed:.0f} "
        f"crashes={tally.crashes} unsafe_outputs={tally.unsafe}"
    )
    return 1 if tally.crashes or tally.unsafe else 0


if __name__ == "__main__":
    sys.exit(main())
