"""The fast front matter reader (sources/frontmatter_fast.py) gives exactly what PyYAML's
safe loader gives — the same keys in the same order, values of the same types, datetimes
with the same tzinfo — or declines (None), for the sample newsroom, the suite's front
matter, generated articles, a list of YAML's traps and generated blocks; and it does read
the front matter newsrooms write, so the shortcut is taken."""

from __future__ import annotations

import ast
import json
import math
import random
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedpub.errors import ContentError
from feedpub.sources import frontmatter_fast
from feedpub.sources.frontmatter import _load, _Loader, _too_many_values, split_front_matter
from tests.fuzz_content import HOSTILE_VALUES
from tests.fuzz_content import KEYS as FUZZ_KEYS

ROOT = Path(__file__).resolve().parent.parent
TYPICAL = (
    'title: "Some title 12"\nauthor: "Author 12"\ndate: 2024-01-01T00:07:00Z\n'
    'tags: [t1, t2]\nbeat: beat-1\nsummary: "Text."\ndraft: false'
)
ERROR = object()


def pyyaml(block: str) -> Any:
    try:
        return yaml.load(block, Loader=_Loader)
    except Exception:  # a YAMLError, the date rejection, a ValueError from int()...
        return ERROR


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down, dict keys in the same order and
    datetimes with equal tzinfo (aware or naive alike)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, datetime):
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def check(block: str) -> bool:
    """Whether the fast reader took ``block``; fails when it gave anything but PyYAML's
    result."""
    fast = frontmatter_fast.read(block)
    if fast is None:
        return False
    slow = pyyaml(block)
    assert slow is not ERROR, f"fast path read {block!r} as {fast!r}; PyYAML refuses it"
    assert same(fast, slow), f"{block!r}: fast {fast!r} != PyYAML {slow!r}"
    # split_front_matter skips the value budget for a fast result of a block shorter than
    # it, counting on this:
    assert not _too_many_values(fast, len(block) + 1), block
    return True


def block_of(text: str) -> str | None:
    """The front matter block, cut as split_front_matter cuts it."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i])
    return None


def content_files() -> list[Path]:
    files = sorted(p for p in (ROOT / "content").iterdir() if p.is_file())
    assert len(files) > 10
    return files


def suite_blocks() -> list[str]:
    """Every string literal of the test suite that opens with front matter."""
    out = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                block = block_of(node.value)
                if block is not None:
                    out.append(block)
    assert len(out) > 20
    return out


def generated_blocks(n: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from vs_hugo import article
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rng = random.Random(7)
    blocks = [block_of(article(i, rng)) for i in range(n)]
    return [b for b in blocks if b is not None]


TRAPS = [
    "yes", "Yes", "YES", "No", "no", "on", "On", "OFF", "off", "y", "n", "true", "False",
    "~", "null", "Null", "NULL", "", "0", "-0", "+1", "007", "0o17", "0x1F", "0b101", "1_000",
    "1:30", "-1:30", "190:20:30", "1.5", ".5", "1.", "-.5", ".inf", "-.inf", "+.INF", ".NaN",
    "1e3", "1.0e+3", "1.0e3", "6.8523015e+5", "685_230.15", "190:20:30.15", "9" * 5000,
    "2026-11-20", "2026-1-2", "2026-11-20 10:00:00", "2026-11-20t10:00:00",
    "2026-11-20  10:00:00", "2026-11-20T10:00:00Z", "2026-11-20T10:00:00+05:30",
    "2026-11-20T10:00:00-05", "2026-11-20T10:00:00 +05:30", "2026-11-20T10:00:00.5Z",
    "2026-11-20T10:00:00.1234567Z", "2026-11-20T10:00:00-00:00", "2026-11-20T10:00:00+24:00",
    "2026-11-20T24:00:00Z", "2026-11-20T10:00:60Z", "2026-02-30", "2026-13-01",
    "2026-02-30T10:00:00Z", "0000-01-01", "9999-12-31 23:59:59-12:00", "2026-11-20 10:00",
    "2026-10-30 11:00", "20/1/6", '"a\\"b"', '"a\\\\b"', '"\\/"', '"\\x41"', '"\\u00e9"',
    '"\\N\\_\\L\\P"', '"\\e\\a"', '"\\q"', '"tab\\there"', '"\\', '"unclosed', "'it''s'",
    "'''", "'a' 'b'", "'unclosed", "''", "' '", '""', '" "', "a: b: c", "b: c", "x:",
    "a:b", "http://x.example/a#b", "x # comment", "x #", "x#y", "# only a comment",
    '"q" # c', '"q"# c', "'q' # c", "'q'x", "[a, [b]]", "[]", "[ ]", "[a]", "[a,]",
    "[a,,b]", "[a, b] # c", "[a, b]x", "[a b, c]", "[yes, 1, ~, 2026-11-20]", "['x', \"y\"]",
    "[a:b]", "[a: b]", "[a #b]", "[a#b]", "[it's]", '[a"b]', "[-a]", "[?a]", "[{a: b}]",
    "{a: b}", "{}", "&a x", "*a", "!!str 1", "!tag x", "|", ">", "|-\n  x", "- a", "-a",
    "--- x", "...", "? x", "?x", ":x", "%x", "@x", "`x", "<<", "=", "<b>bold</b>",
    "AT&T *and* !bang", "50%", "a  b", "trailing   ", "\u00a0nbsp\u00a0", "a\tb", "\tx",
    "Ünïcödé — “quotes”", "Україна", "📡 signal", "العربية", "a\u2028b", "a\x85b",
    "a\ufeffb", "a\x01b", "a\x7fb", "\ufffe", "a\rb",
]  # fmt: skip

BLOCKS = [
    TYPICAL,
    TYPICAL.replace("\n", "\r\n"),
    TYPICAL + "\r",
    "\ufeff" + TYPICAL,
    "\ntitle: x\n\n\ndate: 2026-11-20\n",
    "title: x\n   \ndate: 2026-11-20\n",
    "# a comment\ntitle: x\n# another\n",
    "  # indented comment\ntitle: x",
    "title: x\n  continued",
    "title: x\ncontinued",
    "title: a\ntitle: b",
    "title: a\nTitle: b",
    "yes: 1",
    "on: x",
    "null: x",
    "True: x",
    "1: x",
    "<<: *a",
    "a: &x 1\nb: *x",
    "a b: c",
    "title : x",
    "title:x",
    "title:\tx",
    "-title: x",
    "_title: x",
    "x-y_z: 1",
    "k" * 101 + ": x",
    "k" * 100 + ": x",
    "author:\n- A\n- B",
    "author:\n  - A",
    "image:\n  url: /a.jpg",
    "title: x\n---",
    "title: x\n...",
    "%YAML 1.1\n---\ntitle: x",
    "",
    "\n\n",
    "# only\n# comments",
    "title: x\n\ttags: y",
    "title: 'multi\n  line'",
    'title: "multi\n  line"',
    "tags: [a,\n  b]",
    "title: x\r\ny: z",
    "title: x\ry: z",
]


def test_traps_and_blocks_give_pyyaml_s_result_or_decline() -> None:
    taken = 0
    for value in TRAPS + HOSTILE_VALUES:
        for block in (f"k: {value}", f"k: {value}  ", f"k: [{value}]", f"k: {value} # c"):
            taken += check(block)
    for block in BLOCKS:
        taken += check(block)
    assert taken > 200  # most traps are read, the refusals and oddities declined


def test_suite_and_sample_newsroom_front_matter() -> None:
    blocks = suite_blocks()
    for path in content_files():
        block = block_of(path.read_text(encoding="utf-8"))
        if block is not None:
            blocks.append(block)
    taken = sum(check(b) for b in blocks)
    assert taken > len(blocks) // 2


def test_the_typical_front_matter_is_read_fast() -> None:
    assert check(TYPICAL)
    for block in generated_blocks(2000):
        assert check(block), block
    # Every block of the sample newsroom without an indented line (a nested mapping or a
    # block list) or a duplicated key is read fast.
    for path in content_files():
        block = block_of(path.read_text(encoding="utf-8"))
        if block is not None and not re.search(r"^[ \t-]", block, re.M):
            assert check(block), path.name


def test_the_fast_path_declines_what_it_cannot_prove() -> None:
    for block in (
        "k: 2026-02-30",  # PyYAML's path rejects it, naming the line
        "a: b\na: c",  # PyYAML keeps the last; declined
        "yes: 1",  # the key is True
        "k: " + "9" * 5000,  # int() refuses it
        "k: <<",
        "k: =",
        "",
        "k: [a, [b]]",
        "k: a: b",
        "k: &a 1",
        "k: !!str 1",
        "k: x\n  more",
        "k: a\u2028b",
        "k: a\tb",
    ):
        assert frontmatter_fast.read(block) is None, block


def test_split_front_matter_is_the_same_with_the_fast_path_and_without() -> None:
    def outcome(text: str, fast: bool) -> tuple[Any, ...]:
        try:
            doc = split_front_matter(text, "f.md", fast=fast)
        except ContentError as e:
            return ("rejected", str(e), e.line)
        except ValueError as e:  # "9" * 5000: int() refuses it (folder.py then rejects)
            return ("raised", str(e), None)
        return ("read", doc.body, doc.body_line, doc.meta)

    texts = [p.read_text(encoding="utf-8") for p in content_files()]
    texts += [f"---\n{b}\n---\nbody\n" for b in BLOCKS + [f"k: {v}" for v in TRAPS]]
    texts += ["no front matter\n", "---\ntitle: x\n", "---\n---\n", "---\ntitle: x\n...\nb"]
    for text in texts:
        fast, slow = outcome(text, True), outcome(text, False)
        assert fast[:3] == slow[:3], text
        assert same(fast[3:], slow[3:]), text


def old_split(text: str) -> tuple[str, str, int] | None:
    """(block, body, body_line) as split_front_matter cut them when it split the whole text
    into lines; None without front matter; ValueError when it is never closed."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    raise ValueError("never closed")


SPLIT_LINES = [
    "---", "...", " --- ", "---\r", "\t...", "\x0c---\x0b", "\xa0---\u2028", "--- x", "----",
    ".. .", "a: 1", "b: x y", "# c", "", " ", "body", "\r", "Ünïcödé",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(SPLIT_LINES), max_size=8), st.booleans())
@example(["---"], False)
@example(["---", "---"], False)
@example(["---", "a: 1", "..."], True)
def test_the_front_matter_is_cut_where_it_always_was(lines: list[str], fast: bool) -> None:
    text = "\n".join(lines)
    try:
        want = old_split(text)
    except ValueError:
        with pytest.raises(ContentError, match="never closed"):
            split_front_matter(text, "f.md", fast=fast)
        return
    if want is None:
        doc = split_front_matter(text, "f.md", fast=fast)
        assert (doc.meta, doc.body, doc.body_line) == ({}, text, 1)
        return
    block, body, body_line = want
    try:  # what PyYAML makes of the block, and the line its error names
        meta = _load(block, "f.md", body_line - 2)
    except ContentError as e:
        with pytest.raises(ContentError) as raised:
            split_front_matter(text, "f.md", fast=fast)
        assert (str(raised.value), raised.value.line) == (str(e), e.line)
        return
    if not isinstance(meta, dict | None):
        with pytest.raises(ContentError, match="must be a mapping"):
            split_front_matter(text, "f.md", fast=fast)
        return
    doc = split_front_matter(text, "f.md", fast=fast)
    assert (doc.body, doc.body_line) == (body, body_line)
    assert same(doc.meta, meta or {})


def test_a_stamp_the_fast_path_builds_is_one_the_resolver_calls_a_timestamp() -> None:
    """_scalar builds a string _STAMP matches without asking the resolver first."""
    stamps = st.from_regex(frontmatter_fast._STAMP, fullmatch=True)

    @settings(max_examples=500, deadline=None)
    @given(stamps)
    def prop(s: str) -> None:
        assert frontmatter_fast._resolve(s) == "tag:yaml.org,2002:timestamp"
        node = yaml.ScalarNode("tag:yaml.org,2002:timestamp", s)
        try:
            want: object = yaml.SafeLoader.construct_yaml_timestamp(
                yaml.constructor.SafeConstructor(), node
            )
        except (ValueError, OverflowError):
            want = ERROR
        m = frontmatter_fast._STAMP.fullmatch(s)
        assert m is not None
        try:
            got: object = frontmatter_fast._timestamp(m, s)
        except (ValueError, OverflowError):
            got = ERROR
        assert got is want or (isinstance(got, date) and same(got, want)), s

    prop()


# ---- generated blocks -------------------------------------------------------------------

SAFE_KEYS = ["title", "author", "date", "tags", "beat", "summary", "draft", "slug", "x_y"]
KEY_NAMES = [
    "x", "_x", "x-y", "yes", "No", "on", "null", "True", "1", "a b", "<<", "?", "-x", "title ",
    "k" * 101, *FUZZ_KEYS,
]  # fmt: skip
MILD = [
    "a", "word", "Two", " ", " ", "x", "t1", "beat-1", "12", "0", "2024", "-", ".", ",", "'",
    '"', "é", "—", "«", "📡", "(", ")", "/", "&", "*", "!", "%", "@", "?", "=", "+", "_",
]  # fmt: skip
HARSH = [
    *TRAPS, ":", "#", " #", "# ", ": ", "[", "]", "{", "}", "\\", "|", ">", "`", "<<", "~",
    "  ", "\t", "..", "...", "---", "e", "E", "T", "Z", "\u00a0", "\u2028", "\x85", "\ufeff",
    "\r", "\x00", "\n",
]  # fmt: skip
token = st.one_of(st.sampled_from(MILD), st.sampled_from(MILD), st.sampled_from(HARSH))
plain = st.lists(token, min_size=1, max_size=6).map("".join)
texts = st.text(max_size=12)
double = st.one_of(
    texts.map(lambda s: json.dumps(s, ensure_ascii=False)),  # escapes: \" \\ \n \t \u0001
    texts.map(json.dumps),  # \u00e9: declined
    st.lists(st.sampled_from(MILD), max_size=5).map(lambda xs: '"' + "".join(xs) + '"'),
)
single = texts.map(lambda s: "'" + s.replace("'", "''") + "'")
stamps = st.one_of(
    st.from_regex(frontmatter_fast._STAMP, fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ]+[0-9]{1,2}:[0-9]{2}:[0-9]{2}"
                  r"(\.[0-9]*)?( ?(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?", fullmatch=True),
    st.from_regex(r"[-+]?(0[box]?)?[0-9_.:a-fA-F]{1,8}([eE][-+]?[0-9]+)?", fullmatch=True),
)  # fmt: skip
scalar = st.one_of(plain, plain, double, single, stamps, st.sampled_from(TRAPS))
flow = st.tuples(st.lists(scalar, max_size=4), st.sampled_from([", ", ",", " , ", ",  "])).map(
    lambda t: "[" + t[1].join(t[0]) + "]"
)
values = st.one_of(scalar, scalar, scalar, flow)
tail = st.sampled_from(["", "", "", "", " ", "  ", " # c", " # a: b", "# c", " #", "\t"])
separator = st.sampled_from([": ", ": ", ": ", ": ", ":  ", ":", " : ", ":\t"])
key = st.one_of(st.sampled_from(SAFE_KEYS), st.sampled_from(SAFE_KEYS), st.sampled_from(KEY_NAMES))
line = st.one_of(
    st.tuples(st.sampled_from(SAFE_KEYS), st.just(": "), values, tail).map("".join),
    st.tuples(key, separator, values, tail).map("".join),
    st.tuples(key, separator, values, tail).map("".join),
    st.sampled_from(["", " ", "# comment", "  # c", "  indented: x", "- item", "---", "..."]),
)
blocks = st.tuples(
    st.lists(line, min_size=1, max_size=6), st.sampled_from(["\n", "\n", "\n", "\r\n"])
).map(lambda t: t[1].join(t[0]))


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, tail)
@example("[yes, '1', \"2\", 2026-11-20]", "")
def test_generated_values_give_pyyaml_s_result_or_decline(value: str, tail: str) -> None:
    check(f"k: {value}{tail}")


@settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(blocks)
@example(TYPICAL)
def test_generated_blocks_give_pyyaml_s_result_or_decline(block: str) -> None:
    check(block)


def test_seeded_generated_blocks_are_mostly_read_and_always_right() -> None:
    """A seeded stream of blocks from the same grammar of safe values: the fast path takes
    most of them (so the grammar above exercises it) and gives PyYAML's result."""
    rng = random.Random(20261120)
    safe = ["a", "word", "two words", "Author 12", "2024-01-01T00:07:00Z", "false", "10",
            "beat-1", "é—«", "2026-11-20", "~", "yes", "1:30", ".5", "x:y", "a#b", "AT&T"]  # fmt: skip
    in_lists = [v for v in safe if ":" not in v and "#" not in v]  # declined in a list
    taken = 0
    for _ in range(5000):
        lines = []
        for key in rng.sample(["title", "author", "date", "tags", "beat", "summary", "x"], 5):
            v = rng.choice(safe)
            shape = rng.randrange(4)
            if shape == 1:
                v = json.dumps(v, ensure_ascii=False)
            elif shape == 2:
                v = "'" + v.replace("'", "''") + "'"
            elif shape == 3:
                v = "[" + ", ".join(rng.sample(in_lists, rng.randrange(4))) + "]"
            lines.append(f"{key}: {v}{rng.choice(['', ' ', ' # c'])}")
        taken += check("\n".join(lines))
    assert taken > 4500


def test_the_value_budget_still_applies() -> None:
    for n, rejected in ((9_997, False), (9_998, True)):  # the mapping, key and list count too
        text = "---\nk: [" + ", ".join(["a"] * n) + "]\n---\nbody"
        assert frontmatter_fast.read(block_of(text) or "") is not None
        for fast in (True, False):
            if rejected:
                with pytest.raises(ContentError, match="more than 10,000 values"):
                    split_front_matter(text, "f.md", fast=fast)
            else:
                assert len(split_front_matter(text, "f.md", fast=fast).meta["k"]) == n
