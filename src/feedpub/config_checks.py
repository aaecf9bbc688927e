"""Checks of configuration values that pydantic's field types cannot express: URL and
folder patterns, cron expressions. Run by ``parse_config`` so that a mistake is a config
error at load (exit status 2, key path named), never a traceback at collect, build or
digest send."""

from __future__ import annotations

import posixpath
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from feedpub.errors import ConfigError


# What the checks read of a Config (config.py calls them: no import back, no cycle).
class _Site(Protocol):
    article_path: str


class _Output(Protocol):
    beat_path: str
    author_path: str


class _Newsletter(Protocol):
    schedule: str
    timezone: str


class _Config(Protocol):
    @property
    def site(self) -> _Site: ...
    @property
    def output(self) -> _Output: ...
    @property
    def newsletters(self) -> Sequence[_Newsletter]: ...


_EXAMPLES = {
    "site.article_path": "articles/{slug}/",
    "output.beat_path": "beats/{slug}/",
    "output.author_path": "authors/{slug}/",
}


def check_config(cfg: _Config, path: Path | None) -> None:
    """ConfigError for the first value that would fail later."""
    patterns = {
        "site.article_path": cfg.site.article_path,
        "output.beat_path": cfg.output.beat_path,
        "output.author_path": cfg.output.author_path,
    }
    for key, pattern in patterns.items():
        problem = pattern_problem(pattern, example=_EXAMPLES[key])
        if problem:
            raise ConfigError(problem, path=path, key=key)
    for i, n in enumerate(cfg.newsletters):
        problem = cron_problem(n.schedule, n.timezone)
        if problem:
            raise ConfigError(problem, path=path, key=f"newsletters[{i}].schedule")


def pattern_problem(pattern: str, *, example: str) -> str | None:
    """Why ``pattern`` is not a path pattern with one ``{slug}`` that stays inside the
    folder (or under the site's URL) it is relative to; None when it is one."""
    try:
        fields = [f for _lit, f, _spec, _conv in string.Formatter().parse(pattern)]
    except ValueError as e:
        return f"{pattern!r} is not a pattern ({e}); write it like {example!r}"
    for _lit, name, spec, conv in string.Formatter().parse(pattern):
        if name is None:
            continue
        if name != "slug" or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            return (
                f"unknown placeholder {shown} in {pattern!r}: the only placeholder is "
                f"{{slug}}; write it like {example!r}"
            )
    if "slug" not in fields:
        return f"{pattern!r} has no {{slug}}: every item would share one path; write it like {example!r}"
    sample = pattern.format(slug="x").lstrip("/")  # a leading "/" is read as relative
    if "\\" in sample:
        return f"{pattern!r} must be a path with '/' between folders, like {example!r}"
    normal = posixpath.normpath(sample)
    if normal == ".." or normal.startswith("../") or ".." in sample.split("/"):
        return f"{pattern!r} leads outside the output folder ('..'); write it like {example!r}"
    return None


def cron_problem(schedule: str, timezone: str) -> str | None:
    from feedpub.slots import trigger

    try:
        trigger(schedule, timezone)
    except (ValueError, KeyError, TypeError) as e:
        return f"{schedule!r} is not a valid cron expression ({e}); for example '0 7 * * *'"
    return None
