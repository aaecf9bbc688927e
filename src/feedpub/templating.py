"""Jinja2 environments for our HTML pages: the user's templates folder first
(``[output] templates_dir``), then the templates shipped in the package.

Autoescaping is always on and undefined names are errors, so a typo in a user template
fails loudly instead of printing nothing. (Digest emails have their own environment in
``feedpub.digest.render``: MJML and plain text need different escaping.)
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2


@functools.lru_cache(maxsize=16)
def html_environment(
    templates_dir: Path | None, *, trim_blocks: bool = False, keep_trailing_newline: bool = False
) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.PackageLoader("feedpub", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
        keep_trailing_newline=keep_trailing_newline,
    )
