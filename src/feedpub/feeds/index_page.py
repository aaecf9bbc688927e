"""index.html: the human view of the feeds (no XSLT — browsers are removing it), with
``<link rel="alternate">`` autodiscovery (RSS Autodiscovery; HTML Living Standard §4.6.7.1)
for the site's own feeds; each beat's and author's page (:mod:`feedpub.feeds.pages`) carries
its own.

Rendered with Jinja2 (autoescaped) from the package template ``feeds_index.html.j2``,
which a newsroom can override by putting a file of that name in ``[output] templates_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from feedpub.config import Config
from feedpub.language import direction
from feedpub.links import signup_url
from feedpub.templating import html_environment

TEMPLATE = "feeds_index.html.j2"


@dataclass(frozen=True, slots=True)
class IndexFeed:
    group: str  # "Site", "Beats", "Authors"
    title: str
    description: str
    home_url: str
    rss_url: str
    atom_url: str
    json_url: str
    updated: datetime | None


def newsletter_links(config: Config) -> list[tuple[str, str, str]]:
    """(title, description, sign-up page URL) of every newsletter readers can sign up to."""
    out = []
    for n in config.newsletters:
        url = signup_url(config, n.slug)
        if url is not None:
            out.append((n.title, n.description, url))
    return out


def render_index(
    *,
    site_title: str,
    site_url: str,
    language: str,
    opml_url: str,
    feeds: Sequence[IndexFeed],
    newsletters: Sequence[tuple[str, str, str]] = (),
    templates_dir: Path | None = None,
) -> bytes:
    groups: dict[str, list[IndexFeed]] = {}
    for f in feeds:
        groups.setdefault(f.group, []).append(f)
    html = (
        html_environment(templates_dir, keep_trailing_newline=True)
        .get_template(TEMPLATE)
        .render(
            site_title=site_title,
            site_url=site_url,
            language=language,
            dir=direction(language),
            opml_url=opml_url,
            feeds=feeds,
            groups=groups,
            newsletters=newsletters,
        )
    )
    return html.encode("utf-8")
