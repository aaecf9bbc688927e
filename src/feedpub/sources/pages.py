"""``[[sources]] type = "pages"``: article pages that have no feed.

The list of pages comes from a sitemap (sitemaps.org 0.9; a sitemap index is followed
one level; ``url_pattern`` keeps only article URLs) and/or ``urls``. A page is fetched
when it was never stored, or when its sitemap ``lastmod`` moved since it was fetched;
every other listed page is reported unchanged without a request. Title, authors, dates,
body and lead image are extracted (feedpub.sources.upstream_parse: the page's meta tags
and JSON-LD, then trafilatura), sanitized and made absolute like folder content.

Politeness: at most ``concurrency_per_host`` requests in flight and
``requests_per_second`` request starts per host; at most ``max_pages_per_run`` page
fetches per collect (the rest wait for the next run). A host that answers 429/503
with Retry-After is left alone for the rest of the run.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from feedpub.config import PagesSourceConfig
from feedpub.errors import ContentError
from feedpub.sources import http
from feedpub.sources import upstream as u
from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.upstream_parse import PageData, UpstreamParseError, extract_page, parse_sitemap
from feedpub.text import (
    absolute_url,
    html_to_text,
    reading_minutes,
    sanitize_html,
    summarize,
)
from feedpub.types import ParsedArticle

MAX_CHILD_SITEMAPS = 50
MAX_WORKERS = 8
S_FETCHED = "fetched"  # JSON {page url: sitemap lastmod when fetched ("" if none)}
S_PENDING = "pending"  # "1" while listed pages still wait to be fetched
S_PAGES_FP = "pages_fp"  # the configuration the pages in S_FETCHED were extracted under
PARSER_VERSION = "pages-1"


@dataclass(frozen=True, slots=True)
class Listed:
    url: str
    lastmod: str  # "" when the sitemap gives none


def plan_pages(
    listed: list[Listed], known: set[str], fetched: dict[str, str], limit: int
) -> tuple[list[Listed], set[str], int]:
    """Pure: (pages to fetch now, keys unchanged, pages left for later runs).

    Due: new pages (never stored), pages never fetched under the current configuration
    (absent from ``fetched``) and pages whose lastmod moved since they were fetched; new
    pages first. Other listed pages are unchanged. Due pages beyond ``limit`` wait; a
    known one among them counts as unchanged meanwhile.
    """
    new: list[Listed] = []
    stale: list[Listed] = []
    unchanged: set[str] = set()
    for page in listed:
        if page.url not in known:
            new.append(page)
        elif page.url not in fetched or (page.lastmod and page.lastmod != fetched[page.url]):
            stale.append(page)
        else:
            unchanged.add(page.url)
    due = new + stale
    now, later = due[:limit], due[limit:]
    unchanged |= {p.url for p in later if p.url in known}
    return now, unchanged, len(later)


class PagesSource:
    def __init__(self, cfg: PagesSourceConfig, name: str) -> None:
        self.cfg = cfg
        self.name = name
        self._pattern = re.compile(cfg.url_pattern) if cfg.url_pattern else None

    @property
    def _identity(self) -> str:
        return self.cfg.sitemap or self.cfg.urls[0]

    # ------------------------------------------------------------------ fetch
    def fetch(self, ctx: SourceContext) -> SourceResult:
        result = SourceResult(self.name)
        reason = u.check_disabled(ctx.state, self._identity)
        if reason is not None:
            result.status = "disabled"
            result.error = (
                f"disabled: {reason}; not contacted. Fix the sitemap in config.toml to "
                "re-enable (see docs/sources.md)"
            )
            return result
        try:
            fetched = json.loads(ctx.state.get(S_FETCHED, "{}"))
        except json.JSONDecodeError:
            fetched = {}
        # Pages extracted under another configuration (or parser) are fetched again, a
        # few per run (max_pages_per_run), so beats and bios follow the new rules.
        fp = u.fingerprint(PARSER_VERSION, ctx.rules_fingerprint)
        if not isinstance(fetched, dict) or ctx.state.get(S_PAGES_FP) != fp:
            fetched = {}
        ctx.state[S_PAGES_FP] = fp
        limiter = http.HostLimiter(self.cfg.concurrency_per_host, self.cfg.requests_per_second)
        workers = min(MAX_WORKERS, max(1, self.cfg.concurrency_per_host * 2))
        with http.make_client(max_connections=workers) as client:
            listing = self._listing(client, limiter, ctx, result, fetched)
            if listing is None:
                return result
            listed, listing_complete = listing
            due, unchanged, waiting = plan_pages(
                listed, set(ctx.known), fetched, self.cfg.max_pages_per_run
            )
            result.unchanged_keys = unchanged
            if waiting:
                result.warnings.append(
                    f"{waiting} more pages wait for the next run (max_pages_per_run = "
                    f"{self.cfg.max_pages_per_run})"
                )
            pages = self._fetch_pages(client, limiter, due, ctx, result, workers)
        first_seen = u.FirstSeen(ctx.state)
        for page, data in pages:
            try:
                art = self._article(page.url, data, ctx, first_seen, result.warnings)
            except ContentError as e:
                result.rejected.append(e)
                if page.url in ctx.known:
                    result.unchanged_keys.add(page.url)
                continue
            result.articles.append(art)
            fetched[page.url] = page.lastmod
        # Pages that failed keep their old record (if any) and are tried again next run.
        done = {a.key for a in result.articles}
        for page in due:
            if page.url not in done and page.url in ctx.known:
                result.unchanged_keys.add(page.url)
        listed_urls = {p.url for p in listed}
        fetched = {k: v for k, v in fetched.items() if k in listed_urls or k in ctx.known}
        ctx.state[S_FETCHED] = json.dumps(fetched, sort_keys=True)
        pending = any(p.url not in fetched for p in listed)
        if pending:
            ctx.state[S_PENDING] = "1"
        else:
            ctx.state.pop(S_PENDING, None)
        first_seen.save(ctx.state, keep=set(ctx.known) | done)
        result.complete = (
            self.cfg.retract_missing and listing_complete and not result.rejected and not waiting
        )
        return result

    # ------------------------------------------------------------------ listing
    def _listing(
        self,
        client: httpx.Client,
        limiter: http.HostLimiter,
        ctx: SourceContext,
        result: SourceResult,
        fetched: dict[str, str],
    ) -> tuple[list[Listed], bool] | None:
        listed: dict[str, Listed] = {}
        complete = True
        if self.cfg.sitemap:
            got = self._sitemap(client, limiter, ctx, result, fetched)
            if got is None:
                return None
            pages, complete = got
            for p in pages:
                listed.setdefault(p.url, p)
        for url in self.cfg.urls:
            listed.setdefault(url, Listed(url, ""))
        return list(listed.values()), complete

    def _sitemap(
        self,
        client: httpx.Client,
        limiter: http.HostLimiter,
        ctx: SourceContext,
        result: SourceResult,
        fetched: dict[str, str],
    ) -> tuple[list[Listed], bool] | None:
        assert self.cfg.sitemap
        state = ctx.state
        url = self.cfg.sitemap
        fp = u.fingerprint(PARSER_VERSION, ctx.rules_fingerprint)
        # A 304 is only useful when nothing from the last listing is still waiting.
        _, etag, last_modified = u.validators(
            state, url, fp, bool(ctx.known) and S_PENDING not in state
        )
        try:
            with limiter.slot(url):
                resp = http.get(
                    client,
                    url,
                    timeout=self.cfg.timeout,
                    max_bytes=self.cfg.max_bytes,
                    accept=http.XML_ACCEPT,
                    etag=etag,
                    last_modified=last_modified,
                )
        except http.FetchError as e:
            if e.kind == "gone":
                text = u.disable(state, url, f"HTTP 410 Gone at {e.url}", ctx.now)
                result.status = "disabled"
                result.error = (
                    f"source disabled: sitemap {text}. It will not be contacted again until "
                    "its sitemap changes in config.toml (docs/sources.md)"
                )
            else:
                result.status = "error"
                result.error = f"sitemap {e.kind}: {e}"
            return None
        if resp.moved_to:
            result.warnings.append(
                f"sitemap moved permanently to {resp.moved_to}; update sitemap in config.toml "
                f"(it says {url})"
            )
        if resp.not_modified:
            result.status = "not-modified"
            # Same listing as last time, and nothing from it waits: every page is unchanged.
            return [Listed(k, v) for k, v in fetched.items() if k in ctx.known], True
        u.remember_validators(state, url, fp, resp.etag, resp.last_modified)
        try:
            sm = parse_sitemap(resp.body, self.cfg.max_bytes)
        except UpstreamParseError as e:
            state.pop(u.S_VALIDATORS_FOR, None)  # no 304 for a page that is not a sitemap
            result.status = "error"
            result.error = f"sitemap {resp.url}: {e}"
            return None
        complete = True
        if sm.problem:
            complete = False
            result.warnings.append(f"sitemap {resp.url}: {sm.problem}; used the URLs that parsed")
        urls = list(sm.urls)
        for child in sm.children[:MAX_CHILD_SITEMAPS]:
            child_url = absolute_url(child, resp.url)
            if child_url is None:
                continue
            try:
                with limiter.slot(child_url):
                    cr = http.get(
                        client,
                        child_url,
                        timeout=self.cfg.timeout,
                        max_bytes=self.cfg.max_bytes,
                        accept=http.XML_ACCEPT,
                    )
                child_sm = parse_sitemap(cr.body, self.cfg.max_bytes)
            except (http.FetchError, UpstreamParseError) as e:
                complete = False
                # The index may not change: no 304 shortcut next poll, so this child is
                # asked again (its pages are tried next run, like a failed page).
                state.pop(u.S_VALIDATORS_FOR, None)
                result.warnings.append(
                    f"sitemap {child_url}: {e}; its pages were skipped (tried again next run)"
                )
                continue
            if child_sm.problem:
                complete = False
                result.warnings.append(
                    f"sitemap {child_url}: {child_sm.problem}; used the URLs that parsed"
                )
            urls.extend(child_sm.urls)
        if len(sm.children) > MAX_CHILD_SITEMAPS:
            complete = False
            result.warnings.append(
                f"sitemap index lists {len(sm.children)} sitemaps; read the first {MAX_CHILD_SITEMAPS}"
            )
        out: list[Listed] = []
        for loc, lastmod in urls:
            page = absolute_url(loc, resp.url)
            if page is None or (self._pattern and not self._pattern.search(page)):
                continue
            out.append(Listed(page, lastmod or ""))
        return out, complete

    # ------------------------------------------------------------------ pages
    def _fetch_pages(
        self,
        client: httpx.Client,
        limiter: http.HostLimiter,
        due: list[Listed],
        ctx: SourceContext,
        result: SourceResult,
        workers: int,
    ) -> list[tuple[Listed, PageData]]:
        throttled: set[str] = set()
        lock = threading.Lock()
        tz = ctx.config.site.tz

        def one(page: Listed) -> tuple[Listed, PageData | ContentError]:
            host = http.host_of(page.url)
            try:
                with limiter.slot(page.url):
                    with lock:
                        if host in throttled:
                            return page, ContentError(
                                self.name, f"{page.url}: skipped; {host} asked us to slow down"
                            )
                    resp = http.get(
                        client,
                        page.url,
                        timeout=self.cfg.timeout,
                        max_bytes=self.cfg.max_bytes,
                        accept=http.HTML_ACCEPT,
                    )
            except http.FetchError as e:
                if e.kind == "throttled":
                    with lock:
                        throttled.add(host)
                return page, ContentError(self.name, f"{e.kind}: {e}")
            try:
                return page, extract_page(
                    resp.body, resp.url, content_type=resp.content_type, tz=tz
                )
            except UpstreamParseError as e:
                return page, ContentError(self.name, f"{page.url}: {e}; skipped")

        if not due:
            return []
        with ThreadPoolExecutor(max_workers=min(workers, len(due))) as pool:
            outcomes = list(pool.map(one, due))
        pages: list[tuple[Listed, PageData]] = []
        for page, got in outcomes:
            if isinstance(got, ContentError):
                result.rejected.append(got)
            else:
                pages.append((page, got))
        return pages

    def _article(
        self,
        key: str,
        data: PageData,
        ctx: SourceContext,
        first_seen: u.FirstSeen,
        warnings: list[str],
    ) -> ParsedArticle:
        url = key
        if data.canonical:
            canonical = absolute_url(data.canonical, key)
            if canonical and urlsplit(canonical).netloc == urlsplit(key).netloc:
                url = canonical
        title = data.title
        if not title:
            raise ContentError(self.name, f"{key}: no title found on the page; skipped")
        content = u.drop_leading_title(data.content_html, title)
        authors = u.split_authors(data.authors) or ((self.cfg.author,) if self.cfg.author else ())
        content, bios = u.bio_paragraphs(content, authors, ctx.config)
        content = sanitize_html(content, url)
        if not html_to_text(content).strip():
            raise ContentError(self.name, f"{key}: no article text found on the page; skipped")
        published, art_warnings = first_seen.published(
            key, data.published, ctx.now, f"{key}: no date on the page"
        )
        image = u.image(data.image, url)
        warnings.extend(art_warnings)
        return ParsedArticle(
            source=self.name,
            key=key,
            title=title,
            url=url,
            slug=u.slug_for(url, title),
            authors=authors,
            published=published,
            updated=data.updated if data.updated and data.updated > published else None,
            content_html=content,
            summary=summarize(f"<p>{u.escape_text(data.description)}</p>")
            if data.description
            else summarize(content),
            reading_minutes=reading_minutes(content),
            tags=data.tags,
            beat=self.cfg.beat,
            image=image,
            author_bios=bios,
            language=data.language,
            warnings=tuple(art_warnings),
        )
