"""Pure decisions for collect: identity, beat, and what changed. No I/O; takes ``now``.

Identity (permanent id, never changes once published), in order:
1. front matter ``id``;  2. the same source and key (file path / upstream id);
3. the same canonical URL (a renamed file);  4. new: a tag URI (RFC 4151) minted from
the canonical URL and the publication date, stored and never recomputed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from feedpub.config import Config
from feedpub.errors import ContentError
from feedpub.language import article_language
from feedpub.sources.base import SourceResult
from feedpub.store import StoredArticleState
from feedpub.text import slugify
from feedpub.types import Article, ArticleStatus, ParsedArticle

Kind = Literal["new", "updated", "unchanged", "retracted", "scheduled"]


@dataclass(frozen=True)
class BeatRules:
    defined: frozenset[str]
    by_author: Mapping[str, str]  # author name (casefolded) or author slug -> beat
    by_tag: Mapping[str, str]  # tag (casefolded) -> beat
    keywords: tuple[tuple[re.Pattern[str], str], ...]
    default: str | None

    @classmethod
    def from_config(cls, config: Config, stored_author_beats: Mapping[str, str]) -> BeatRules:
        by_author: dict[str, str] = dict(stored_author_beats)  # learned from bio lines
        for a in config.authors:
            if a.beat:
                by_author[a.name.casefold()] = a.beat
        for b in config.beats:
            for name in b.authors:
                by_author.setdefault(name.casefold(), b.slug)
        by_tag: dict[str, str] = {}
        keywords: list[tuple[re.Pattern[str], str]] = []
        for b in config.beats:
            for t in b.tags:
                by_tag.setdefault(t.casefold(), b.slug)
            for k in b.keywords:
                keywords.append((re.compile(rf"(?<!\w){re.escape(k)}(?!\w)", re.I), b.slug))
        return cls(
            defined=frozenset(b.slug for b in config.beats),
            by_author=by_author,
            by_tag=by_tag,
            keywords=tuple(keywords),
            default=config.site.default_beat,
        )

    def with_bios(self, bios: Iterable[tuple[str, str | None]]) -> BeatRules:
        """Add author -> beat links learned from bio lines in this batch (config wins)."""
        extra = {name.casefold(): beat for name, beat in bios if beat}
        return replace(self, by_author={**extra, **self.by_author})

    def assign(self, p: ParsedArticle, author_slugs: tuple[str, ...]) -> str | None:
        """front matter beat -> the author's beat -> tags -> keywords -> default beat."""
        if p.beat is not None:
            if p.beat not in self.defined:
                allowed = ", ".join(sorted(self.defined)) or "(none defined)"
                raise ContentError(
                    p.key,
                    f"beat {p.beat!r} is not defined in config.toml; defined beats: {allowed}",
                )
            return p.beat
        for name, slug in zip(p.authors, author_slugs, strict=True):
            beat = self.by_author.get(name.casefold()) or self.by_author.get(slug)
            if beat:
                return beat
        for t in p.tags:
            if beat := self.by_tag.get(t.casefold()):
                return beat
        text = f"{p.title}\n{p.summary}"
        for rx, beat in self.keywords:
            if rx.search(text):
                return beat
        return self.default


@dataclass
class Change:
    kind: Kind
    article_id: str
    article: Article | None = None  # new/updated: the record to write
    content_hash: str = ""
    insert: bool = False
    source_key: str = ""
    status: ArticleStatus | None = None  # retracted / status-only changes


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    rejected: list[ContentError] = field(default_factory=list)
    unchanged: int = 0

    def count(self, kind: Kind) -> int:
        # A renamed or moved file whose content did not change is an "unchanged" change
        # (its source key is rewritten): counted with the files skipped unread.
        extra = self.unchanged if kind == "unchanged" else 0
        return extra + sum(c.kind == kind for c in self.changes)


def index_by_url(stored: Iterable[StoredArticleState]) -> dict[str, StoredArticleState]:
    """URL -> the stored article that has it. A URL is unique among live articles only: a
    retracted article's URL may belong to a newer one, and the live article is the one
    the URL means (a new file with that URL is its duplicate, not the retracted one's
    return). Between retracted ones, the greatest id: the same whatever order the store
    returned them in."""
    out: dict[str, StoredArticleState] = {}
    for st in stored:
        cur = out.get(st.url)
        if cur is None or _url_rank(st) > _url_rank(cur):
            out[st.url] = st
    return out


def _url_rank(st: StoredArticleState) -> tuple[bool, str]:
    return (st.status is not ArticleStatus.RETRACTED, st.id)


@functools.lru_cache(maxsize=4096)  # a batch asks twice per new article (states_for, plan)
def mint_id(url: str, published: datetime, tz: ZoneInfo) -> str:
    """RFC 4151 tag URI: tag:host,YYYY-MM-DD:/path — stable, not a URL (isPermaLink=false)."""
    parts = urlsplit(url)
    specific = parts.path or "/"
    if parts.query:
        specific += "?" + parts.query
    return f"tag:{parts.hostname},{published.astimezone(tz):%Y-%m-%d}:{specific}"


def content_hash(p: ParsedArticle, beat: str | None) -> str:
    payload = json.dumps([*p.fingerprint_fields(), beat], default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def author_slug(name: str, configured: Mapping[str, str]) -> str:
    return configured.get(name.casefold()) or _slug(name)


@functools.lru_cache(maxsize=4096)  # a newsroom's few hundred bylines, once each
def _slug(name: str) -> str:
    return slugify(name)


def plan_source(
    result: SourceResult,
    *,
    stored: Iterable[StoredArticleState],
    by_url: Mapping[str, StoredArticleState],
    by_id: Mapping[str, StoredArticleState],
    rules: BeatRules,
    author_slugs: Mapping[str, str],
    now: datetime,
    tz: ZoneInfo,
) -> Plan:
    plan = Plan(
        rejected=list(result.rejected), unchanged=len(result.unchanged_keys) + result.unlisted
    )
    mine = {st.source_key: st for st in stored if st.source == result.name}
    # A rejected input is still there (a typo in an edit): its last good version stays
    # published, never retracted (retraction: the input was deleted or made a draft).
    rejected_keys = {e.source for e in result.rejected}
    present = (
        set(result.unchanged_keys)
        | {p.key for p in result.articles}
        | result.drafts
        | rejected_keys
    )
    claimed: dict[str, str] = {}  # article id -> key that claimed it in this batch
    urls: dict[str, str] = {}  # url -> key, to reject duplicates within the batch

    for p in result.articles:
        slugs = tuple(author_slug(a, author_slugs) for a in p.authors)
        try:
            beat = rules.assign(p, slugs)
        except ContentError as e:
            plan.rejected.append(e)
            continue
        if p.url in urls:
            plan.rejected.append(
                ContentError(
                    p.key, f"same URL as {urls[p.url]} ({p.url}): give one a different slug or url"
                )
            )
            continue
        existing = _identify(p, mine, by_url, by_id, present)
        if existing is not None and existing.id in claimed:
            plan.rejected.append(
                ContentError(
                    p.key, f"same article id as {claimed[existing.id]}: give one a different id"
                )
            )
            continue
        urls[p.url] = p.key
        published = p.published
        if p.date_inferred and existing is not None:
            # Keep the year guessed when first seen: a re-collect next year must not move it.
            old = existing.published.astimezone(tz)
            new = published.astimezone(tz)
            if (old.month, old.day) == (new.month, new.day):
                published = existing.published
                p = replace(p, published=published)
        digest = content_hash(p, beat)
        status = ArticleStatus.SCHEDULED if published > now else ArticleStatus.PUBLISHED
        if existing is None:
            owner = by_url.get(p.url)
            if owner is not None and owner.status is not ArticleStatus.RETRACTED:
                plan.rejected.append(
                    ContentError(
                        p.key,
                        f"same URL as {owner.source_key} ({p.url}): give one a different slug or url",
                    )
                )
                continue
            article_id = p.explicit_id or mint_id(p.url, published, tz)
            if article_id in by_id or article_id in claimed:
                plan.rejected.append(
                    ContentError(
                        p.key, f"article id {article_id!r} is already used by another article"
                    )
                )
                continue
            claimed[article_id] = p.key
            updated = _stated_updated(p, now) or published
            plan.changes.append(
                Change(
                    "scheduled" if status is ArticleStatus.SCHEDULED else "new",
                    article_id,
                    _article(p, article_id, beat, slugs, status, updated),
                    digest,
                    insert=True,
                    source_key=p.key,
                )
            )
            continue
        claimed[existing.id] = p.key
        moved = existing.source != p.source or existing.source_key != p.key
        if digest == existing.content_hash and existing.status is status and not moved:
            plan.unchanged += 1
            continue
        real_edit = digest != existing.content_hash or existing.status is ArticleStatus.RETRACTED
        # Filed under another beat or re-linked (a rule or URL pattern change), text
        # untouched: not an edit to readers, so `updated` stays (RFC 4287 §4.2.15).
        refiled = digest != existing.content_hash and (
            content_hash(replace(p, url=existing.url), existing.beat) == existing.content_hash
        )
        moves = real_edit and not refiled
        updated = (_stated_updated(p, now) or now) if moves else existing.updated
        if status is ArticleStatus.SCHEDULED:
            updated = p.updated or published
        kind: Kind = "scheduled" if status is ArticleStatus.SCHEDULED else "updated"
        if not real_edit:
            kind = "updated" if existing.status is not status else "unchanged"
        plan.changes.append(
            Change(
                kind,
                existing.id,
                _article(p, existing.id, beat, slugs, status, updated),
                digest,
                insert=False,
                source_key=p.key,
            )
        )

    if result.complete:
        for key, st in mine.items():
            if key in present or st.id in claimed or st.status is ArticleStatus.RETRACTED:
                continue
            plan.changes.append(
                Change("retracted", st.id, status=ArticleStatus.RETRACTED, source_key=key)
            )
    # Drafts whose file is unchanged stay as they are; a published article turned draft:
    for key in result.drafts:
        was = mine.get(key)
        if was is not None and was.status is not ArticleStatus.RETRACTED:
            plan.changes.append(
                Change("retracted", was.id, status=ArticleStatus.RETRACTED, source_key=key)
            )
    return plan


def _stated_updated(p: ParsedArticle, now: datetime) -> datetime | None:
    """The input's own ``updated``, never after the collection time: a correction time in
    the future (a typo) would date the item, and its feeds, ahead of every reader's clock.
    The stated value stays in the content hash, so a re-read changes nothing."""
    return min(p.updated, now) if p.updated is not None else None


def _identify(
    p: ParsedArticle,
    mine: Mapping[str, StoredArticleState],
    by_url: Mapping[str, StoredArticleState],
    by_id: Mapping[str, StoredArticleState],
    present: set[str],
) -> StoredArticleState | None:
    if p.explicit_id and p.explicit_id in by_id:
        return by_id[p.explicit_id]
    if p.key in mine:
        return mine[p.key]
    st = by_url.get(p.url)
    # A renamed file keeps its article, unless the old file is still there (a duplicate).
    if st is not None and not (st.source == p.source and st.source_key in present):
        return st
    return None


def _article(
    p: ParsedArticle,
    article_id: str,
    beat: str | None,
    slugs: tuple[str, ...],
    status: ArticleStatus,
    updated: datetime,
) -> Article:
    return Article(
        id=article_id,
        url=p.url,
        slug=p.slug,
        title=p.title,
        authors=p.authors,
        author_slugs=slugs,
        beat=beat,
        tags=p.tags,
        published=p.published,
        updated=max(updated, p.published),
        summary=p.summary,
        content_html=p.content_html,
        reading_minutes=p.reading_minutes,
        status=status,
        image=p.image,
        # Stated, else detected (not part of the content hash: a better detector later
        # must not make every article "updated").
        language=article_language(p.language, p.title, p.summary, p.content_html),
    )
