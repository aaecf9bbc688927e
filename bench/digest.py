"""Digest composition speed: render once per beat selection, substitute per subscriber.

100,000 subscribers over 20 beat selections, a 25-article edition over 5 beats.
Prints: render time per selection, composed messages/s (bytes ready to send, one core),
the naive one-EmailMessage-per-subscriber rate measured on a sample in the same run,
their ratio, and how long freezing the edition's 100,000 ledger rows takes in SQLite.

Run: .venv/bin/python bench/digest.py  [--subscribers N] [--naive-sample N]
"""

from __future__ import annotations

import argparse
import email.policy
import itertools
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.config import parse_config
from feedpub.digest.build import EditionBuilder, EditionInfo
from feedpub.digest.compose import Recipient, fill_placeholders
from feedpub.digest.freeze import freeze
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import Tokens
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus, Image

NOW = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)
BEATS = ["world", "technology", "climate", "sri-lanka", "russia-ukraine-war"]


def config(root: Path):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "site": {"title": "JadeTimes", "base_url": "https://jadetimes.example/"},
            "store": {"url": f"sqlite:///{root / 'bench.db'}"},
            "beats": [{"slug": b, "title": b.replace("-", " ").title()} for b in BEATS],
            "newsletters": [
                {
                    "slug": "daily",
                    "title": "JadeTimes Daily",
                    "from": "JadeTimes <news@jadetimes.example>",
                    "postal_address": "12 Galle Road, Colombo 03, Sri Lanka",
                    "schedule": "0 7 * * *",
                }
            ],
            "secrets": {"token_key_env": "FEEDPUB_BENCH_SECRET"},
        },
        root=root,
    )


def articles() -> list[Article]:
    out = []
    summary = (
        "Officials said on Wednesday that the talks would continue next week, after a "
        "session that both delegations described as businesslike and focused on shipping. "
    )
    for i in range(25):
        beat = BEATS[i % len(BEATS)]
        out.append(
            Article(
                id=f"tag:jadetimes.example,2026:story-{i}",
                url=f"https://jadetimes.example/post/story-{i}/",
                slug=f"story-{i}",
                title=f"Story {i}: a headline of ordinary length about {beat}",
                authors=("Iruni Kalupahana",),
                author_slugs=("iruni-kalupahana",),
                beat=beat,
                tags=(),
                published=NOW - timedelta(minutes=10 * i + 5),
                updated=NOW - timedelta(minutes=10 * i + 5),
                summary=summary * 2,
                content_html="<p>…</p>",
                reading_minutes=4,
                status=ArticleStatus.PUBLISHED,
                image=Image(f"https://jadetimes.example/img/{i}.jpg") if i % 3 == 0 else None,
            )
        )
    return out


def selections(n: int) -> list[tuple[str, ...]]:
    combos = [c for k in (5, 4, 3, 2, 1) for c in itertools.combinations(BEATS, k)]
    return [tuple(b for b in BEATS if b in c) for c in combos[:n]]


def naive(builder: EditionBuilder, recipients: list[tuple[Recipient, tuple[str, ...]]]) -> float:
    """One EmailMessage per subscriber (the email package builds and encodes each)."""
    composer = builder.composer
    assert composer is not None
    ed = composer.edition
    t0 = time.perf_counter()
    for rec, sel in recipients:
        r = builder.render(sel)
        unsub = composer.links.unsubscribe_url(rec.subscriber_id)
        prefs = composer.links.preferences_url(rec.subscriber_id)
        vals = {"name": rec.name, "email": rec.email, "unsub": unsub, "prefs": prefs}
        msg = EmailMessage()
        msg["From"] = ed.from_
        msg["To"] = f"{rec.name} <{rec.email}>"
        msg["Subject"] = ed.subject
        msg["Date"] = ed.date
        msg["Message-ID"] = f"<{composer.message_id(rec.subscriber_id)}>"
        msg["List-Id"] = ed.list_id
        msg["List-Unsubscribe"] = composer.links.list_unsubscribe(rec.subscriber_id)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(fill_placeholders(r.text, **vals), cte="quoted-printable")
        msg.add_alternative(
            fill_placeholders(r.html, **vals), subtype="html", cte="quoted-printable"
        )
        msg.as_bytes(policy=email.policy.SMTP)
    return len(recipients) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--selections", type=int, default=20)
    ap.add_argument("--naive-sample", type=int, default=2_000)
    args = ap.parse_args()
    os.environ.setdefault("FEEDPUB_BENCH_SECRET", "bench-key")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = config(root)
        arts = articles()
        nl = cfg.newsletter("daily")
        sections = [(b, [a for a in arts if a.beat == b]) for b in BEATS]
        info = EditionInfo(1, "daily", "2026-11-26T07:00Z", "2026-11-26T0700Z", 1, NOW, NOW)
        builder = EditionBuilder(cfg, Renderer(cfg), nl, info, sections, Tokens(b"bench-key"))
        sels = selections(args.selections)
        recipients = [
            (Recipient(i + 1, f"reader{i}@example.com", f"Reader {i}"), sels[i % len(sels)])
            for i in range(args.subscribers)
        ]
        print(
            f"edition: {len(arts)} articles in {len(BEATS)} beats; "
            f"{len(recipients):,} subscribers over {len(sels)} beat selections"
        )

        t0 = time.perf_counter()
        prepared = {sel: builder.prepared(sel) for sel in sels}
        t_render = time.perf_counter() - t0
        html_max = max(len(builder.render(sel).html.encode()) for sel in sels)
        print(
            f"render (Jinja2 + MJML) + prepare: {len(sels)} selections in {t_render * 1000:.0f} ms "
            f"({t_render / len(sels) * 1000:.1f} ms each); largest HTML part {html_max / 1024:.1f} KB"
        )

        composer = builder.composer
        assert composer is not None
        t0 = time.perf_counter()
        total = 0
        for rec, sel in recipients:
            total += len(composer.compose(prepared[sel], rec))
        t_compose = time.perf_counter() - t0
        rate = len(recipients) / t_compose
        print(
            f"composed {len(recipients):,} messages ({total / 1e6:.0f} MB) in {t_compose:.2f} s: "
            f"{rate:,.0f} messages/s (target >= 20,000)"
        )
        sample = recipients[: args.naive_sample]
        naive_rate = naive(builder, sample)
        print(
            f"naive one EmailMessage per subscriber ({len(sample):,} sample): "
            f"{naive_rate:,.0f} messages/s; speed-up {rate / naive_rate:,.0f}x"
        )

        # Freezing: one transaction writes the edition, its articles and every ledger row.
        store = Store(cfg.store_url)
        with store.begin() as conn:
            store.upsert_author(conn, "iruni-kalupahana", "Iruni Kalupahana")
            for a in arts:
                store.upsert_article(
                    conn, a, source="bench", source_key=a.slug, content_hash="x",
                    first_seen=a.published, generation=1, insert=True,
                )  # fmt: skip
            conn.execute(
                sa.insert(s.subscribers),
                [
                    {"email": r.email, "name": r.name, "status": "active", "hard_bounces": 0,
                     "created": NOW, "updated": NOW}
                    for r, _ in recipients
                ],
            )  # fmt: skip
            conn.execute(
                sa.insert(s.subscriptions),
                [
                    {"subscriber_id": r.subscriber_id, "newsletter": "daily", "beats": list(sel),
                     "status": "active", "created": NOW, "updated": NOW}
                    for r, sel in recipients
                ],
            )  # fmt: skip
        t0 = time.perf_counter()
        edition_id, _ = freeze(cfg, store, nl, "2026-11-26T07:00Z", NOW)
        t_freeze = time.perf_counter() - t0
        with store.read() as conn:
            rows = conn.execute(
                sa.select(sa.func.count()).where(s.deliveries.c.edition_id == edition_id)
            ).scalar_one()
        store.close()
        print(
            f"freeze edition with {rows:,} ledger rows (one SQLite transaction): {t_freeze:.2f} s"
        )
        if rate < 20_000:
            print("BELOW TARGET", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
