"""An edition's render context and its prepared messages, one per beat selection.

Rendering (Jinja2 + MJML) happens once per distinct selection; everything personal
is a placeholder filled in by ``compose`` per subscriber.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedpub.config import Config, NewsletterConfig
from feedpub.digest.compose import Composer, Edition, PreparedMessage, personal_context
from feedpub.digest.edition import cap_section
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import LinkMaker, Tokens, ascii_from, from_domain
from feedpub.feeds.plan import beat_home_url, feeds_url
from feedpub.language import direction
from feedpub.links import signup_url
from feedpub.types import Article, Image

HTML_LIMIT = 100 * 1024  # Gmail clips HTML over ~102 KB (FIELD-NOTES); keep a margin
COLUMN_PX = 552  # the template's 600 px body less 24 px padding each side
PREVIEW_CHARS = 140
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip


def image_context(img: Image | None) -> dict[str, Any] | None:
    """The lead image as the digest shows it: alt from the front matter (alt, else caption;
    else empty, never the headline, which a blocked image would show twice), and a size
    never wider than the column, height scaled to keep the shape (unknown: width only)."""
    if img is None:
        return None
    width = COLUMN_PX
    height = None
    if img.width and img.height:
        width = min(img.width, COLUMN_PX)
        height = max(1, round(img.height * width / img.width))
    return {"url": img.url, "alt": img.alt or "", "width": width, "height": height}


def long_date(d: datetime) -> str:
    """'26 November 2026' — locale-independent (strftime %B follows the process locale)."""
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def short_date(d: datetime) -> str:
    return f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}"


@dataclass(frozen=True, slots=True)
class EditionInfo:
    id: int
    newsletter: str
    slot: str
    key: str
    number: int
    date: datetime  # the edition's send date (slot time, or freeze time for manual ones)
    created: datetime


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    cap: int  # articles per beat actually shown


# The archive lives in the output folder, so its URLs are under ``[output] base_url``
# (where that folder is served; default the site's), not necessarily ``site.base_url``.
def archive_url(config: Config, newsletter: str, key: str) -> str:
    return f"{feeds_url(config)}newsletters/{newsletter}/{key}.html"


def index_url(config: Config, newsletter: str) -> str:
    return f"{feeds_url(config)}newsletters/{newsletter}/"


def atom_url(config: Config, newsletter: str) -> str:
    return f"{feeds_url(config)}newsletters/{newsletter}/atom.xml"


class EditionBuilder:
    def __init__(
        self,
        config: Config,
        renderer: Renderer,
        newsletter: NewsletterConfig,
        edition: EditionInfo,
        sections: Sequence[tuple[str, Sequence[Article]]],
        tokens: Tokens | None,
    ) -> None:
        self.config = config
        self.renderer = renderer
        self.nl = newsletter
        self.edition = edition
        self.sections = [(b, list(arts)) for b, arts in sections]
        self.domain = from_domain(newsletter.from_)
        self._rendered: dict[tuple[str, ...], Rendered] = {}
        self._prepared: dict[tuple[str, ...], PreparedMessage] = {}
        self.composer: Composer | None = None
        if tokens is not None:
            self.composer = Composer(
                self.header_edition(), LinkMaker(config, newsletter.slug, tokens), self.domain
            )

    # ---- context ---------------------------------------------------------------------
    def base_context(self) -> dict[str, Any]:
        cfg, nl, ed = self.config, self.nl, self.edition
        return {
            "site": {
                "title": cfg.site.title,
                "base_url": cfg.site.base_url,
                "language": cfg.site.language,
                "dir": direction(cfg.site.language),
            },
            "newsletter": {
                "slug": nl.slug,
                "title": nl.title,
                "description": nl.description,
                "index_url": index_url(cfg, nl.slug),
                "atom_url": atom_url(cfg, nl.slug),
                "signup_url": signup_url(cfg, nl.slug),
            },
            "edition": {
                "number": ed.number,
                "slot": ed.slot,
                "key": ed.key,
                "date_label": long_date(ed.date.astimezone(nl.tz)),
                "archive_url": archive_url(cfg, nl.slug, ed.key),
            },
            "postal_address": nl.postal_address,
        }

    def subject(self) -> str:
        return self.renderer.subject(self.nl.subject, self.base_context())

    def header_edition(self) -> Edition:
        return Edition(
            newsletter=self.nl.slug,
            key=self.edition.key,
            from_=ascii_from(self.nl.from_),
            subject=self.subject(),
            date=self.edition.created,
            list_id=f"{self.nl.title} <{self.nl.slug}.{self.domain}>",
            reply_to=ascii_from(self.nl.reply_to) if self.nl.reply_to else None,
        )

    def _article(self, a: Article) -> dict[str, Any]:
        by = " and ".join(a.authors) if len(a.authors) <= 2 else ", ".join(a.authors)
        when = short_date(a.published.astimezone(self.config.site.tz))
        bits = [f"By {by}"] if by else []
        bits += [when, f"{a.reading_minutes} min read"]
        lang = a.language or self.config.site.language
        return {
            "id": a.id,
            "title": a.title,
            "url": a.url,
            "authors": list(a.authors),
            "byline": " · ".join(bits),
            "date_label": when,
            "published": a.published.isoformat(),
            "summary": a.summary,
            "image_url": a.image.url if a.image else None,
            "image": image_context(a.image),
            "reading_minutes": a.reading_minutes,
            # The story's own language and direction (an Arabic story in an English
            # digest is laid out right to left); the byline stays in the site's.
            "lang": lang,
            "dir": direction(lang),
        }

    def context(self, selection: Sequence[str], cap: int, *, personal: bool) -> dict[str, Any]:
        ctx = self.base_context()
        wanted = set(selection)
        sections = []
        titles: list[str] = []
        for beat, arts in self.sections:
            if beat not in wanted:
                continue
            shown, more = cap_section(arts, cap)
            try:
                bc = self.config.beat(beat)
                title = bc.title
            except KeyError:
                title = beat
            sections.append(
                {
                    "slug": beat,
                    "title": title,
                    "url": beat_home_url(self.config, beat),
                    "more": more,
                    "articles": [self._article(a) for a in shown],
                }
            )
            titles += [a.title for a in shown]
        preview = " · ".join(titles)
        if len(preview) > PREVIEW_CHARS:
            preview = preview[:PREVIEW_CHARS].rsplit(" ", 1)[0] + "…"
        ctx["sections"] = sections
        ctx["preview_text"] = preview
        ctx["subject"] = self.subject()
        if personal:
            ctx.update(personal_context())
        else:
            ctx.update(
                {
                    "subscriber": {"name": "", "email": ""},
                    "unsubscribe_url": "",
                    "preferences_url": "",
                    "personal": False,
                }
            )
        return ctx

    # ---- rendering -------------------------------------------------------------------
    def render(self, selection: Sequence[str], *, personal: bool = True) -> Rendered:
        """Jinja2 + MJML once for this selection; fewer articles per beat until the HTML
        fits under Gmail's clipping limit."""
        key = (*selection, "" if personal else "\x00archive")
        found = self._rendered.get(key)
        if found is not None:
            return found
        cap = self.nl.max_articles_per_beat
        while True:
            ctx = self.context(selection, cap, personal=personal)
            html = self.renderer.html(ctx)
            if len(html.encode("utf-8")) <= HTML_LIMIT or cap == 1:
                break
            cap = max(1, cap * 2 // 3)
        result = Rendered(ctx["subject"], self.renderer.text(ctx), html, cap)
        self._rendered[key] = result
        return result

    def prepared(self, selection: Sequence[str]) -> PreparedMessage:
        key = tuple(selection)
        found = self._prepared.get(key)
        if found is None:
            r = self.render(selection)
            digest = hashlib.sha256(
                f"{self.nl.slug}|{self.edition.key}|{';'.join(key)}".encode()
            ).hexdigest()[:24]
            assert self.composer is not None
            found = PreparedMessage.build(self.composer.edition, r.text, r.html, f"fp-{digest}")
            self._prepared[key] = found
        return found


def group_sections(
    beats: Sequence[str], articles: Mapping[str, Article], order: Sequence[tuple[str, str | None]]
) -> list[tuple[str, list[Article]]]:
    """Edition articles (id, beat) in stored order -> sections in the newsletter's beat order."""
    by: dict[str, list[Article]] = {}
    for aid, beat in order:
        a = articles.get(aid)
        if a is not None and beat is not None:
            by.setdefault(beat, []).append(a)
    return [(b, by[b]) for b in beats if by.get(b)]
