"""The one module that uses Jinja2 and MJML for digests.

Templates are looked up first in ``[output] templates_dir`` (the user's overrides), then
in the package's ``feedpub/templates``. ``*.mjml.j2`` and ``*.html.j2`` are autoescaped;
``*.txt.j2`` is not. MJML is compiled with mjml-python (MRML, Rust): it does not inline
``<mj-style inline="inline">`` (FIELD-NOTES), so our template styles through
``mj-attributes`` and inline attributes only and needs no CSS inliner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from mjml import mjml2html

from feedpub.config import Config
from feedpub.errors import ConfigError, is_rust_panic

DIGEST_MJML = "digest.mjml.j2"
DIGEST_TEXT = "digest.txt.j2"
ARCHIVE_INDEX = "newsletter_index.html.j2"


class TemplateError(ConfigError):
    """A digest template is missing or broken (names the template and line)."""


class Renderer:
    def __init__(self, config: Config) -> None:
        self.config = config
        loaders: list[jinja2.BaseLoader] = []
        if config.output.templates_dir is not None:
            folder = config.resolve(config.output.templates_dir)
            if not folder.is_dir():
                raise ConfigError(
                    f"templates folder {folder} does not exist; create it or remove the key",
                    path=config.path,
                    key="output.templates_dir",
                )
            loaders.append(jinja2.FileSystemLoader(str(folder)))
        loaders.append(jinja2.FileSystemLoader(str(Path(__file__).parent.parent / "templates")))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("mjml.j2", "html.j2"), default_for_string=False
            ),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"template {e.filename or name}:{e.lineno}: {e.message}") from None
        except jinja2.TemplateNotFound:
            raise TemplateError(f"template {name} not found") from None

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        try:
            return self._template(name).render(ctx)
        except jinja2.UndefinedError as e:
            raise TemplateError(f"template {name}: {e.message}") from None

    def mjml(self, ctx: dict[str, Any]) -> str:
        return self._render(DIGEST_MJML, ctx)

    def html(self, ctx: dict[str, Any]) -> str:
        """Jinja2 -> MJML -> responsive HTML."""
        return self.page(DIGEST_MJML, ctx)

    def page(self, name: str, ctx: dict[str, Any]) -> str:
        """Any ``*.mjml.j2`` template: Jinja2 -> MJML -> HTML (the sign-up mails too)."""
        source = self._render(name, ctx)
        try:
            return str(mjml2html(source, disable_comments=True))
        except Exception as e:  # MRML raises its own error types
            raise TemplateError(f"template {name}: MJML did not compile: {e}") from None
        except BaseException as e:  # and a Rust panic is a BaseException (pyo3)
            if not is_rust_panic(e):
                raise
            raise TemplateError(f"template {name}: MJML failed: {e}") from None

    def plain(self, name: str, ctx: dict[str, Any]) -> str:
        """Any ``*.txt.j2`` template (not escaped)."""
        return self._render(name, ctx)

    def text(self, ctx: dict[str, Any]) -> str:
        return self._render(DIGEST_TEXT, ctx)

    def index(self, ctx: dict[str, Any]) -> str:
        return self._render(ARCHIVE_INDEX, ctx)

    def subject(self, source: str, ctx: dict[str, Any]) -> str:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        try:
            value = env.from_string(source).render(ctx)
        except jinja2.TemplateError as e:
            raise TemplateError(f"newsletter subject template {source!r}: {e}") from None
        return " ".join(value.split())
