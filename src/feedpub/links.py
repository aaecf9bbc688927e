"""Public URLs of the sign-up endpoints ``feedpub serve`` answers (no I/O, config only).

Low in the layers on purpose: the feeds' HTML pages, the newsletter archive and the web
app all link to the sign-up page through :func:`signup_url`.
"""

from __future__ import annotations

from urllib.parse import quote

from feedpub.config import Config


def subscribe_base(config: Config) -> str:
    """The sign-up endpoint (POST) and the prefix of the per-newsletter pages (GET)."""
    return (config.signup.url or f"{config.site.base_url}subscribe").rstrip("/")


def confirm_base(config: Config) -> str:
    """Where the confirmation mail's link points (GET shows a button; POST confirms)."""
    return config.signup.confirm_url or f"{config.site.base_url}confirm"


def signup_offers(config: Config) -> list[tuple[str, str, list[str], str]]:
    """(slug, title, beats, sign-up URL) of every newsletter readers can sign up to: what
    the feeds' HTML pages show, and so part of their fingerprint."""
    out = []
    for nl in config.newsletters:
        url = signup_url(config, nl.slug)
        if url is not None:
            out.append((nl.slug, nl.title, list(config.newsletter_beats(nl)), url))
    return out


def signup_url(config: Config, newsletter: str) -> str | None:
    """The sign-up page of a newsletter, or None when sign-up is off or the newsletter is
    not configured (then link nowhere)."""
    if not config.signup.enabled:
        return None
    if newsletter not in {n.slug for n in config.newsletters}:
        return None
    return f"{subscribe_base(config)}/{quote(newsletter, safe='')}"
