"""The HTML pages of the web endpoints, from small autoescaped Jinja2 templates
(``templates/web_*.html.j2``; a file of the same name in ``[output] templates_dir``
overrides ours). Every value is escaped by Jinja2's autoescaping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from feedpub.config import Config, NewsletterConfig
from feedpub.templating import html_environment


@dataclass(frozen=True, slots=True)
class BeatChoice:
    slug: str
    title: str
    checked: bool


def _render(config: Config, template: str, **context: Any) -> bytes:
    tdir = config.resolve(config.output.templates_dir) if config.output.templates_dir else None
    site = {
        "title": config.site.title,
        "base_url": config.site.base_url,
        "language": config.site.language,
    }
    return (
        html_environment(tdir, trim_blocks=True)
        .get_template(template)
        .render(site=site, **context)
        .encode("utf-8")
    )


def unsubscribe_page(
    config: Config,
    *,
    newsletter_title: str,
    action: str,
    done: bool,
    preferences_url: str | None,
) -> bytes:
    return _render(
        config,
        "web_unsubscribe.html.j2",
        newsletter_title=newsletter_title,
        action=action,
        done=done,
        preferences_url=preferences_url,
    )


def preferences_page(
    config: Config,
    *,
    newsletter_title: str,
    action: str,
    beats: Sequence[BeatChoice],
    subscribed: bool,
    saved: bool = False,
    error: str = "",
    unsubscribe_url: str | None = None,
) -> bytes:
    return _render(
        config,
        "web_preferences.html.j2",
        newsletter_title=newsletter_title,
        action=action,
        beats=beats,
        subscribed=subscribed,
        saved=saved,
        error=error,
        unsubscribe_url=unsubscribe_url,
    )


def message_page(config: Config, heading: str, message: str) -> bytes:
    return _render(config, "web_message.html.j2", heading=heading, message=message)


def unknown_topics(config: Config, nl: NewsletterConfig, slugs: Sequence[str]) -> str:
    """The preferences page's message for beats a form sent that the newsletter does not
    have (a page saved before the newsroom changed its topics, a hand-made request): the
    topics by their titles, never raw slugs."""
    known = {b.slug: b.title for b in config.beats}  # a slug not there has no name to show
    titles = [f"“{known[s]}”" for s in dict.fromkeys(s.strip() for s in slugs) if s in known]
    offered = [config.beat(b).title for b in config.newsletter_beats(nl)]
    which = (
        f"{' and '.join(titles)} {'is' if len(titles) == 1 else 'are'} not part of {nl.title}"
        if titles
        else f"A topic you chose is no longer offered by {nl.title}"
    )
    return f"{which}; nothing was saved. Choose from {', '.join(offered)} below."


def signup_page(
    config: Config,
    *,
    newsletter: dict[str, str] | None,
    newsletters: Sequence[dict[str, Any]] = (),
    action: str = "",
    beats: Sequence[BeatChoice] = (),
    error: str = "",
    email: str = "",
    name: str = "",
    consent_text: str = "",
) -> bytes:
    return _render(
        config,
        "web_signup.html.j2",
        newsletter=newsletter,
        newsletters=newsletters,
        action=action,
        beats=beats,
        error=error,
        email=email,
        name=name,
        consent_text=consent_text,
    )


def signup_sent_page(config: Config, *, newsletter_title: str, days: int) -> bytes:
    return _render(config, "web_signup_sent.html.j2", newsletter_title=newsletter_title, days=days)


def confirm_page(
    config: Config,
    *,
    newsletter_title: str,
    action: str,
    done: bool,
    preferences_url: str | None,
) -> bytes:
    return _render(
        config,
        "web_confirm.html.j2",
        newsletter_title=newsletter_title,
        action=action,
        done=done,
        preferences_url=preferences_url,
    )
