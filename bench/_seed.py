"""The newsletter benchmarks' store: 25 published stories and ``n`` active subscribers of
the ``daily`` newsletter, every other one choosing some of ``beats`` (bench/smtp.py,
bench/scale_send.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus


def seed_newsletter(store: Store, n: int, beats: list[str], now: datetime) -> None:
    with store.begin() as conn:
        store.upsert_author(conn, "iruni-kalupahana", "Iruni Kalupahana")
        for i in range(25):
            published = now - timedelta(minutes=10 + i)
            a = Article(
                id=f"tag:jadetimes.example,2026:story-{i}",
                url=f"https://jadetimes.example/articles/story-{i}/",
                slug=f"story-{i}", title=f"Story {i}: repairs continue before winter",
                authors=("Iruni Kalupahana",), author_slugs=("iruni-kalupahana",),
                beat=beats[i % len(beats)], tags=(), published=published,
                updated=published, summary="Engineers warned the grid remains fragile. " * 6,
                content_html="<p>Body</p>", reading_minutes=4,
                status=ArticleStatus.PUBLISHED, image=None,
            )  # fmt: skip
            store.upsert_article(conn, a, source="bench", source_key=a.slug,
                                 content_hash=str(i), first_seen=published, generation=1,
                                 insert=True)  # fmt: skip
        conn.execute(
            sa.insert(s.subscribers),
            [{"email": f"reader{i}@example.org", "name": f"Reader {i}", "status": "active",
              "hard_bounces": 0, "created": now, "updated": now} for i in range(n)],
        )  # fmt: skip
        ids = conn.execute(sa.select(s.subscribers.c.id)).scalars().all()
        conn.execute(
            sa.insert(s.subscriptions),
            [{"subscriber_id": i, "newsletter": "daily", "status": "active",
              "beats": [] if i % 2 else beats[: 1 + i % 4], "created": now, "updated": now}
             for i in ids],
        )  # fmt: skip
