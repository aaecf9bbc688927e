"""``[[sources]] type = "feed"``: a CMS's RSS, Atom or JSON Feed.

One conditional GET per collect (an unchanged upstream costs one 304); entries become
ParsedArticle records keyed by their upstream id (guid / Atom id / JSON Feed id, else
the link), sanitized and made absolute against the entry's own URL exactly like folder
content. A feed is a window: entries that drop out are not retracted unless
``retract_missing = true``. Faults are reported per source (docs/sources.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from feedpub.config import FeedSourceConfig
from feedpub.errors import ContentError
from feedpub.sources import http
from feedpub.sources import upstream as u
from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.upstream_parse import (
    PageData,
    UpstreamEntry,
    UpstreamFeed,
    UpstreamParseError,
    extract_page,
    parse_feed,
)
from feedpub.text import absolute_url, reading_minutes, sanitize_html, summarize
from feedpub.types import Image, ParsedArticle

log = logging.getLogger(__name__)

S_FULL_TEXT = "full_text"  # JSON {key: fingerprint of the feed entry whose page was fetched}
S_FULL_TEXT_PENDING = "full_text_pending"  # "1": some pages failed or wait; no 304 shortcut
FULL_TEXT_CONCURRENCY = 2  # article pages in flight per host (full_text = true)
FULL_TEXT_PER_SECOND = 4.0  # article page requests per second per host

# Bump when parsing changes what articles look like: cached validators are then ignored once.
PARSER_VERSION = "1"

# WordPress (Yoast and others) appends "The post X appeared first on Y." to feed items.
_APPEARED_FIRST = re.compile(
    r"<p>\s*The post\s+<a[^>]*>.*?</a>\s+appeared first on\s+<a[^>]*>.*?</a>\.?\s*</p>\s*$",
    re.I | re.S,
)
_BLOCK = re.compile(r"<(p|div|br|h[1-6]|ul|ol|figure|img|blockquote|pre|table)\b", re.I)
_MORE = re.compile(r"\s*\[(?:&#8230;|…|\.\.\.|&hellip;)\]\s*(?=</p>|$)")


class FeedSource:
    def __init__(self, cfg: FeedSourceConfig, name: str) -> None:
        self.cfg = cfg
        self.name = name

    # ------------------------------------------------------------------ fetch
    def fetch(self, ctx: SourceContext) -> SourceResult:
        result = SourceResult(self.name)
        state = ctx.state
        reason = u.check_disabled(state, self.cfg.url)
        if reason is not None:
            result.status = "disabled"
            result.error = (
                f"disabled: {reason}; not contacted. Fix the url in config.toml to re-enable "
                "(see docs/sources.md)"
            )
            return result

        url = self._current_url(state, result)
        # Validators are honoured only while nothing that shapes articles changed.
        config_fp = u.fingerprint(
            PARSER_VERSION,
            ctx.rules_fingerprint,
            self.cfg.beat,
            self.cfg.author,
            sorted(self.cfg.map_tags_to_beats.items()),
            ctx.config.site.timezone,
            self.cfg.full_text,
        )
        validators_ok, etag, last_modified = u.validators(
            state, url, config_fp, bool(ctx.known) and S_FULL_TEXT_PENDING not in state
        )
        try:
            with http.make_client(max_connections=1) as client:
                resp = http.get(
                    client,
                    url,
                    timeout=self.cfg.timeout,
                    max_bytes=self.cfg.max_bytes,
                    accept=http.FEED_ACCEPT,
                    etag=etag,
                    last_modified=last_modified,
                )
        except http.FetchError as e:
            return self._failed(result, e, ctx)

        if resp.moved_to:
            state[u.S_URL] = resp.moved_to
            state[u.S_MOVED_FROM] = self.cfg.url
            result.warnings.append(
                f"feed moved permanently to {resp.moved_to}; using the new URL from now on. "
                f"Update url in config.toml (it says {self.cfg.url})"
            )
            url = resp.moved_to

        if resp.not_modified:
            result.status = "not-modified"
            result.unchanged_keys = set(ctx.known)
            return result

        # Remember validators for the URL we asked (the stored one after a permanent move).
        u.remember_validators(state, url, config_fp, resp.etag, resp.last_modified)

        body_sha = hashlib.sha256(resp.body).hexdigest()[:32]
        if validators_ok and state.get(u.S_BODY_SHA) == body_sha:
            # Same bytes as last time (a server without validators): nothing to parse.
            result.status = "not-modified"
            result.unchanged_keys = set(ctx.known)
            return result

        try:
            feed = parse_feed(resp.body, resp.content_type, tz=ctx.config.site.tz)
        except UpstreamParseError as e:
            # Not a feed (a maintenance page...): forget its validators, or the next poll
            # gets a 304 for it and reports the source fine.
            state.pop(u.S_VALIDATORS_FOR, None)
            result.status = "error"
            result.error = f"{resp.url}: {e}"
            return result
        state[u.S_BODY_SHA] = body_sha
        excerpts = self._shape(feed, resp.url, ctx, result)
        if self.cfg.full_text:
            self._full_text(excerpts, ctx, result, config_fp)
        elif excerpts and len(excerpts) == len(result.articles):
            result.warnings.append(
                f"{resp.url}: the feed carries excerpts only (no content:encoded or full "
                "content); articles hold the excerpt. Set full_text = true to fetch each "
                "article's page"
            )
        result.complete = self.cfg.retract_missing and feed.problem is None
        return result

    def _current_url(self, state: dict[str, str], result: SourceResult) -> str:
        """The configured URL, or where it permanently moved (while the config still says
        the old one). A config change to any other URL wins and clears the move."""
        moved = state.get(u.S_URL)
        if moved and state.get(u.S_MOVED_FROM) == self.cfg.url:
            result.warnings.append(
                f"using {moved} (the feed moved permanently there); update url in config.toml"
            )
            return moved
        state.pop(u.S_URL, None)
        state.pop(u.S_MOVED_FROM, None)
        return self.cfg.url

    def _failed(self, result: SourceResult, e: http.FetchError, ctx: SourceContext) -> SourceResult:
        if e.kind == "gone":
            text = u.disable(ctx.state, self.cfg.url, f"HTTP 410 Gone at {e.url}", ctx.now)
            result.status = "disabled"
            result.error = (
                f"source disabled: {text}. It will not be contacted again until its url "
                "changes in config.toml (docs/sources.md)"
            )
            return result
        result.status = "error"
        result.error = f"{e.kind}: {e}"
        return result

    # ------------------------------------------------------------------ shaping
    def _shape(
        self, feed: UpstreamFeed, feed_url: str, ctx: SourceContext, out: SourceResult
    ) -> dict[str, UpstreamEntry]:
        """Entries -> out.articles; returns the excerpt-only entries by key."""
        for msg in feed.skipped:
            out.rejected.append(ContentError(self.name, f"{feed_url}: {msg}; skipped"))
        first_seen = u.FirstSeen(ctx.state)
        seen: set[str] = set()
        excerpts: dict[str, UpstreamEntry] = {}
        for entry in feed.entries:
            try:
                art = self._article(entry, feed_url, ctx, first_seen, out.warnings)
            except ContentError as e:
                out.rejected.append(e)
                continue
            if art.key in seen:
                out.warnings.append(
                    f"{feed_url}: entry {entry.position} repeats id {art.key!r}; kept the first"
                )
                continue
            seen.add(art.key)
            if entry.content_html is None:
                excerpts[art.key] = entry
            out.articles.append(art)
        if feed.problem:
            out.warnings.append(
                f"{feed_url}: {feed.problem}; imported the {len(out.articles)} entries that parsed"
            )
        first_seen.save(ctx.state, keep=set(ctx.known) | seen)
        return excerpts

    def _full_text(
        self,
        excerpts: dict[str, UpstreamEntry],
        ctx: SourceContext,
        result: SourceResult,
        config_fp: str,
    ) -> None:
        """``full_text = true``: for entries that carry only an excerpt (Wix), fetch the
        article page and extract its body. A page is fetched only for a new entry or one
        whose feed entry changed; others are reported unchanged without a request."""
        state = ctx.state
        try:
            done = json.loads(state.get(S_FULL_TEXT, "{}"))
        except json.JSONDecodeError:
            done = {}
        if not isinstance(done, dict):
            done = {}
        todo: list[tuple[ParsedArticle, str]] = []
        keep: list[ParsedArticle] = []
        waiting = 0
        for art in result.articles:
            e = excerpts.get(art.key)
            if e is None:
                keep.append(art)
                continue
            efp = u.fingerprint(config_fp, art.fingerprint_fields())
            if art.key in ctx.known and done.get(art.key) == efp:
                result.unchanged_keys.add(art.key)
            elif len(todo) < self.cfg.full_text_per_run:
                todo.append((art, efp))
            elif art.key in ctx.known:
                result.unchanged_keys.add(art.key)
                waiting += 1
            else:
                waiting += 1  # new: published with its full text next run, not as an excerpt
        limiter = http.HostLimiter(FULL_TEXT_CONCURRENCY, FULL_TEXT_PER_SECOND)
        tz = ctx.config.site.tz

        def one(item: tuple[ParsedArticle, str]) -> tuple[ParsedArticle, str, PageData | str]:
            art, efp = item
            try:
                with limiter.slot(art.url), http.make_client(max_connections=1) as client:
                    resp = http.get(
                        client,
                        art.url,
                        timeout=self.cfg.timeout,
                        max_bytes=self.cfg.max_bytes,
                        accept=http.HTML_ACCEPT,
                    )
                return (
                    art,
                    efp,
                    extract_page(resp.body, resp.url, content_type=resp.content_type, tz=tz),
                )
            except (http.FetchError, UpstreamParseError) as e:
                return art, efp, str(e)

        fetched: dict[str, ParsedArticle] = {}
        pending = waiting > 0
        if todo:
            with ThreadPoolExecutor(max_workers=min(len(todo), FULL_TEXT_CONCURRENCY * 2)) as pool:
                for art, efp, got in pool.map(one, todo):
                    if isinstance(got, str):
                        pending = True
                        if art.key in ctx.known:  # keep the stored full text meanwhile
                            result.unchanged_keys.add(art.key)
                            result.warnings.append(
                                f"{art.url}: full text not fetched ({got}); kept the stored "
                                "version, will try again next run"
                            )
                            continue
                        result.warnings.append(
                            f"{art.url}: full text not fetched ({got}); stored the excerpt, "
                            "will try again next run"
                        )
                        fetched[art.key] = art
                        continue
                    fetched[art.key] = self._with_page(art, got, ctx)
                    done[art.key] = efp
        if waiting:
            result.warnings.append(
                f"{waiting} entries wait for their full text until the next run "
                f"(full_text_per_run = {self.cfg.full_text_per_run})"
            )
        result.articles = keep + [fetched[a.key] for a, _ in todo if a.key in fetched]
        live = set(ctx.known) | {a.key for a in result.articles} | set(excerpts)
        done = {k: v for k, v in done.items() if k in live}
        if done:
            state[S_FULL_TEXT] = json.dumps(done, sort_keys=True)
        else:
            state.pop(S_FULL_TEXT, None)
        if pending:
            state[S_FULL_TEXT_PENDING] = "1"
        else:
            state.pop(S_FULL_TEXT_PENDING, None)

    def _with_page(self, art: ParsedArticle, page: PageData, ctx: SourceContext) -> ParsedArticle:
        """The feed's metadata (key, title, dates, tags) with the page's body and bios."""
        body = u.drop_leading_title(page.content_html, art.title)
        authors = art.authors or u.split_authors(page.authors)
        body, bios = u.bio_paragraphs(body, authors, ctx.config)
        content = sanitize_html(body, art.url)
        if not content:
            return art
        image = art.image
        if image is None and page.image:
            img = absolute_url(page.image, art.url)
            image = Image(img) if img else None
        summary = (
            summarize(f"<p>{u.escape_text(page.description)}</p>")
            if page.description
            else summarize(content)
        )
        return replace(
            art,
            content_html=content,
            summary=summary,
            reading_minutes=reading_minutes(content),
            authors=authors,
            image=image,
            author_bios=bios,
        )

    def _article(
        self,
        e: UpstreamEntry,
        feed_url: str,
        ctx: SourceContext,
        first_seen: u.FirstSeen,
        warnings: list[str],
    ) -> ParsedArticle:
        where = f"{feed_url} entry {e.position}" + (f" ({e.title[:60]!r})" if e.title else "")
        link = absolute_url(e.link, feed_url) if e.link else None
        if link is None and e.id and e.id.startswith(("http://", "https://")):
            link = e.id
        if link is None:
            raise ContentError(self.name, f"{where}: no link to the article; skipped")
        key = u.stable_key(e.id, link)
        assert key is not None  # link is set
        raw = e.content_html or e.summary_html
        if not raw or not raw.strip():
            raise ContentError(self.name, f"{where}: no content and no summary; skipped")
        if not _BLOCK.search(raw):
            raw = f"<p>{raw}</p>"  # a bare excerpt (Wix descriptions) becomes a paragraph
        # Relative URLs resolve against the content's xml:base (Atom) when the feed gives
        # one, else against the entry's own URL (RFC 4287 §2; RFC 3986 §5.1).
        base = (absolute_url(e.base, link) if e.base else None) or link
        content = sanitize_html(_APPEARED_FIRST.sub("", raw), base if e.content_html else link)
        if not content:
            raise ContentError(self.name, f"{where}: content is empty once sanitized; skipped")
        if e.content_html and e.summary_html:
            summary_html = _MORE.sub("", _APPEARED_FIRST.sub("", e.summary_html))
            summary = summarize(sanitize_html(summary_html, link)) or summarize(content)
        else:
            summary = summarize(content)
        title = e.title or summarize(content, 80)
        if not title:
            raise ContentError(self.name, f"{where}: no title and no text; skipped")
        published, art_warnings = first_seen.published(
            key, e.published, ctx.now, f"{where}: no date"
        )
        authors = u.split_authors(e.authors) or ((self.cfg.author,) if self.cfg.author else ())
        image = (
            u.image(e.image.url, link, e.image.type, e.image.length, e.image.width, e.image.height)
            if e.image
            else None
        )
        warnings.extend(art_warnings)
        return ParsedArticle(
            source=self.name,
            key=key,
            title=title,
            url=link,
            slug=u.slug_for(link, title),
            authors=authors,
            published=published,
            updated=e.updated if e.updated and e.updated > published else None,
            content_html=content,
            summary=summary,
            reading_minutes=reading_minutes(content),
            tags=e.tags,
            beat=u.beat_for(
                e.tags, self.cfg.beat, self.cfg.map_tags_to_beats, ctx.config, warnings
            ),
            image=image,
            language=e.language,
            warnings=tuple(art_warnings),
        )
