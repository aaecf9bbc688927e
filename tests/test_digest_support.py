"""Helpers for the digest tests: articles straight into a real SQLite store, subscribers,
the outbox folder of the first edition, and the CLI on the newsroom's config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from feedpub.cli import main
from feedpub.config import Config
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus, Image
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)  # after the 07:00 Europe/London slot
OUTBOX = Path("outbox/daily/2026-11-26T0700Z")  # the edition of NOW's slot, under the root


def article(
    n: int,
    beat: str | None,
    published: datetime,
    *,
    title: str | None = None,
    status: ArticleStatus = ArticleStatus.PUBLISHED,
    authors: tuple[str, ...] = ("Iruni Kalupahana",),
    image: bool = False,
    summary: str | None = None,
) -> Article:
    slug = f"story-{n}"
    return Article(
        id=f"tag:news.example,2026:{slug}",
        url=f"https://news.example/post/{slug}/",
        slug=slug,
        title=title or f"Story number {n}",
        authors=authors,
        author_slugs=tuple(a.lower().replace(" ", "-") for a in authors),
        beat=beat,
        tags=(),
        published=published,
        updated=published,
        summary=summary if summary is not None else f"Summary of story {n} & more <b>.",
        content_html=f"<p>Body {n}</p>",
        reading_minutes=3,
        status=status,
        image=Image(f"https://news.example/img/{n}.jpg", "image/jpeg", 1000) if image else None,
    )


def put(
    store: Store, *articles: Article, insert: bool = True, first_seen: datetime | None = None
) -> None:
    with store.begin() as conn:
        for a in articles:
            for slug, name in zip(a.author_slugs, a.authors, strict=True):
                store.upsert_author(conn, slug, name)
            store.upsert_article(
                conn,
                a,
                source="test",
                source_key=a.slug,
                content_hash=str(hash((a.title, a.summary, a.status))),
                first_seen=first_seen or a.published,
                generation=1,
                insert=insert,
            )


def hours_ago(h: float, now: datetime = NOW) -> datetime:
    return now - timedelta(hours=h)


def subscribe(config: Config, store: Store, email: str, beats: str = "", name: str = "") -> int:
    from feedpub.digest import subscribers as subs

    with store.begin() as conn:
        subs.add(config, conn, email, name=name, newsletters=["daily"], beats=beats, now=NOW)
        rows = subs.listing(conn, "daily")
    return next(r.id for r in rows if r.email == subs.normalize_email(email))


def _run(newsroom: Newsroom, *args: str) -> tuple[int, str, str]:
    """``feedpub --config NEWSROOM ARGS...``: (exit code, stdout, stderr)."""
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *args])
    return r.exit_code, r.stdout, r.stderr
