"""YAML front matter: ``---`` line, YAML mapping, ``---`` line, then the body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from feedpub.errors import ContentError

# libyaml's C loader is ~10x faster; the pure-Python one behaves the same.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KNOWN_KEYS = frozenset(
    {"title", "author", "authors", "date", "updated", "beat", "tags", "summary", "image",
     "slug", "url", "id", "draft", "language", "lang"}
)  # fmt: skip


@dataclass(frozen=True)
class Document:
    meta: dict[str, Any]
    body: str
    body_line: int  # 1-based line of the body's first line in the file


def split_front_matter(text: str, source: str) -> Document:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return Document({}, text, 1)
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            block = "\n".join(lines[1:i])
            try:
                meta = yaml.load(block, Loader=_Loader)
            except yaml.YAMLError as e:
                # The context mark is where the broken construct began ("[" never closed);
                # the problem mark is where the parser gave up (often past the end).
                mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
                line = min(mark.line + 2, i) if mark is not None else 2
                problem = getattr(e, "problem", None) or str(e).splitlines()[0]
                raise ContentError(
                    source,
                    f"front matter is not valid YAML ({problem}); quote values that contain ':' or '#'",
                    line=line,
                ) from None
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                raise ContentError(
                    source, "front matter must be a mapping of 'key: value' lines", line=2
                )
            return Document({str(k): v for k, v in meta.items()}, "\n".join(lines[i + 1 :]), i + 2)
    raise ContentError(source, "front matter opened with '---' is never closed with '---'", line=1)
