"""Jinja2 environments for our HTML pages: the user's templates folder first
(``[output] templates_dir``), then the templates shipped in the package.

Autoescaping is always on and undefined names are errors, so a typo in a user template
fails loudly instead of printing nothing. (Digest emails have their own environment in
``feedpub.digest.render``: MJML and plain text need different escaping.)

Compiled templates are kept between runs (Jinja's bytecode cache, in its private
per-user folder under the temporary directory): compiling the feed page and the index
page took about 20 ms of every ``publish`` that wrote them. Jinja checks each entry
against the template's source (a checksum) and its own bytecode version; the file
names carry the feedpub version and the environment's options, which change what a
template compiles to. A cache that cannot be used (no safe folder, a file that cannot be
read or written) is no cache: templates are compiled as before.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

from feedpub import __version__

log = logging.getLogger(__name__)


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache; a miss, never an error, when it cannot read or write."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as e:  # an unreadable or foreign entry: compile instead
            bucket.reset()
            log.debug("template cache entry not used", extra={"error": repr(e)})

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as e:  # a full or read-only disk: the next run compiles again
            log.debug("template cache entry not written", extra={"error": repr(e)})


def _bytecode_cache(
    *, trim_blocks: bool, keep_trailing_newline: bool
) -> jinja2.BytecodeCache | None:
    """The cache for an environment with these options (each compiles templates apart)."""
    flags = f"t{int(trim_blocks)}k{int(keep_trailing_newline)}"
    try:
        return _BytecodeCache(pattern=f"__feedpub-{__version__}-{flags}-%s.cache")
    except (OSError, RuntimeError) as e:  # no private temporary folder of our own
        log.debug("no template cache", extra={"error": repr(e)})
        return None


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
        bytecode_cache=_bytecode_cache(
            trim_blocks=trim_blocks, keep_trailing_newline=keep_trailing_newline
        ),
    )
