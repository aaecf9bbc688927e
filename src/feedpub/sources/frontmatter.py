"""YAML front matter: ``---`` line, YAML mapping, ``---`` line, then the body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from feedpub.errors import ContentError
from feedpub.sources import frontmatter_fast

# libyaml's C loader is ~10x faster; the pure-Python one behaves the same.
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# How many values the front matter may hold once its aliases are expanded: a real one
# holds a few dozen; a "billion laughs" alias bomb expands to 10**9.
MAX_VALUES = 10_000


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader, with impossible dates ("x: 2026-02-30") a rejection at their line
    instead of a bare ValueError."""


def _timestamp(loader: Any, node: yaml.ScalarNode) -> object:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as e:
        raise _BadValue(node.start_mark.line, f"{node.value!r} is not a real date ({e})") from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


class _BadValue(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


KNOWN_KEYS = frozenset(
    {"title", "author", "authors", "date", "updated", "beat", "tags", "summary", "image",
     "slug", "url", "id", "draft", "language", "lang"}
)  # fmt: skip


@dataclass(frozen=True)
class Document:
    meta: dict[str, Any]
    body: str
    body_line: int  # 1-based line of the body's first line in the file


def split_front_matter(text: str, source: str, *, fast: bool = True) -> Document:
    """The front matter of ``text`` and its body. Plain ``key: value`` front matter is read
    by ``frontmatter_fast`` (the same result, several times faster); anything else, or
    ``fast=False``, by PyYAML."""
    # Line by line up to the closing "---", as text.split("\n") would give them, without
    # splitting (and joining again) the whole body.
    end = text.find("\n")
    if (text if end < 0 else text[:end]).strip() != "---":
        return Document({}, text, 1)
    start = end + 1  # of the block
    i = 0  # 0-based line number of the line read
    while end >= 0:
        pos, i = end + 1, i + 1
        end = text.find("\n", pos)
        if (text[pos:] if end < 0 else text[pos:end]).strip() in ("---", "..."):
            block = text[start : pos - 1]
            body = "" if end < 0 else text[end + 1 :]
            meta: Any = frontmatter_fast.read(block) if fast else None
            if meta is not None and len(block) < MAX_VALUES:
                # The fast reader's keys are strings, and its mapping holds at most
                # 1 + len(block) values (a "k:" line is two, a list item one more
                # character and one more value): nothing below could refuse or change it.
                return Document(meta, body, i + 2)
            if meta is None:
                meta = _load(block, source, i)
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                raise ContentError(
                    source, "front matter must be a mapping of 'key: value' lines", line=2
                )
            if _too_many_values(meta, MAX_VALUES):
                raise ContentError(
                    source,
                    f"front matter holds more than {MAX_VALUES:,} values once its aliases "
                    "(*name) are expanded; write the values out instead of repeating aliases",
                    line=2,
                )
            return Document({str(k): v for k, v in meta.items()}, body, i + 2)
    raise ContentError(source, "front matter opened with '---' is never closed with '---'", line=1)


def _load(block: str, source: str, end: int) -> Any:
    """``block`` read by PyYAML; ``end`` is the 0-based line of the closing ``---``."""
    try:
        return yaml.load(block, Loader=_Loader)  # a SafeLoader subclass
    except _BadValue as e:
        raise ContentError(
            source,
            f"front matter: {e.reason[:200]}: write dates like 2026-11-20",
            line=e.line + 2,
        ) from None
    except RecursionError:
        raise ContentError(source, "front matter is nested too deeply to read", line=2) from None
    except yaml.YAMLError as e:
        # The context mark is where the broken construct began ("[" never closed);
        # the problem mark is where the parser gave up (often past the end).
        mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
        line = min(mark.line + 2, end) if mark is not None else 2
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ContentError(
            source,
            f"front matter is not valid YAML ({problem}); quote values that contain ':' or '#'",
            line=line,
        ) from None


def _too_many_values(value: object, budget: int) -> bool:
    """True when ``value`` expanded (a shared list counted each time it is referenced)
    holds more than ``budget`` values. Stops counting at the budget: linear in it."""
    stack = [value]
    while stack:
        budget -= 1
        if budget < 0:
            return True
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set):
            stack.extend(v)
    return False
