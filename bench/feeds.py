"""Feeds benchmark: generated stores of 1,000 / 10,000 / 100,000 articles, 20 beats,
50 authors (rows bulk-inserted with SQL, not collected).

Prints, per size: (a) a build with nothing changed, (b) one new article (the issue's
target is quoted at 100,000), (c) ``build --force``: item entries written per second and
peak RSS (this process, and the largest worker process), (d) a naive rebuild (load every visible article, feedgen every current feed)
and its ratio to (b). Each size runs in a fresh subprocess so peak RSS is its own.

    .venv/bin/python bench/feeds.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

N_BEATS = 20
N_AUTHORS = 50
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PARA = (
    "<p>The council met on Tuesday to discuss the harbour budget &amp; the new ferry "
    'timetable; <a href="https://bench.example/post/related/">background</a> and '
    "<em>reactions</em> from residents, traders and the port authority followed.</p>"
)
CONTENT = "<h2>What happened</h2>" + PARA * 8  # ~2 KB, a short news story


def config_text(root: Path) -> str:
    beats = "\n".join(
        f'[[beats]]\nslug = "beat-{b:02d}"\ntitle = "Beat {b:02d}"\n' for b in range(N_BEATS)
    )
    return (
        '[site]\ntitle = "Bench Times"\nbase_url = "https://bench.example/"\n'
        'language = "en"\ntimezone = "UTC"\n\n'
        f'[store]\nurl = "sqlite:///{root / "bench.db"}"\n\n'
        f'[output]\ndir = "{root / "feeds"}"\nitems_per_feed = 50\n\n{beats}'
    )


def _ts(dt: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (UTC, naive).
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _row(i: int, gen: int, published: datetime) -> tuple[object, ...]:
    slug = f"story-{i}"
    return (
        f"tag:bench.example,2020:/post/{slug}/",
        "bench",
        f"{slug}.md",
        f"https://bench.example/post/{slug}/",
        slug,
        f"Story {i}: harbour budget & ferry timetable",
        "The council met on Tuesday to discuss the harbour budget and the ferry timetable.",
        CONTENT,
        2,
        f"beat-{i % N_BEATS:02d}",
        json.dumps([f"tag{i % 7}", "local"]),
        f"https://bench.example/img/{i}.jpg" if i % 3 == 0 else None,
        "image/jpeg" if i % 3 == 0 else None,
        48213 if i % 3 == 0 else None,
        None,
        _ts(published),
        _ts(published),
        _ts(published),
        "published",
        f"{i:064x}",
        gen,
    )


INSERT = (
    "INSERT INTO articles (id, source, source_key, url, slug, title, summary, content_html, "
    "reading_minutes, beat, tags, image_url, image_type, image_length, language, published, "
    "updated, first_seen, status, content_hash, changed_generation) "
    "VALUES (" + ",".join("?" * 21) + ")"
)


def _authors(i: int) -> list[tuple[str, str, int]]:
    aid = f"tag:bench.example,2020:/post/story-{i}/"
    first = i % N_AUTHORS
    out = [(aid, f"author-{first:02d}", 0)]
    if i % 10 == 0:
        out.append((aid, f"author-{(first + 1) % N_AUTHORS:02d}", 1))
    return out


def generate(root: Path, n: int) -> None:
    from feedpub.config import load_config
    from feedpub.store import Store

    (root / "config.toml").write_text(config_text(root), encoding="utf-8")
    cfg = load_config(root / "config.toml")
    Store(cfg.store_url).close()  # creates the schema
    db = sqlite3.connect(root / "bench.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.executemany(
        "INSERT INTO authors (slug, name, bio) VALUES (?, ?, '')",
        [
            (f"author-{a:02d}", f"Author {a:02d}" + (" Ünïcødé" if a % 5 == 0 else ""))
            for a in range(N_AUTHORS)
        ],
    )
    start = NOW - timedelta(minutes=30 * n)
    batch: list[tuple[object, ...]] = []
    links: list[tuple[str, str, int]] = []
    for i in range(n):
        batch.append(_row(i, 1, start + timedelta(minutes=30 * i)))
        links.extend(_authors(i))
        if len(batch) >= 5000:
            db.executemany(INSERT, batch)
            db.executemany("INSERT INTO article_authors VALUES (?, ?, ?)", links)
            batch, links = [], []
    db.executemany(INSERT, batch)
    db.executemany("INSERT INTO article_authors VALUES (?, ?, ?)", links)
    db.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    db.commit()
    db.close()


def add_one(root: Path, n: int) -> None:
    """One new article, as collect would store it: a new row and a generation bump."""
    db = sqlite3.connect(root / "bench.db")
    gen = int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]) + 1
    db.execute(INSERT, _row(n, gen, NOW - timedelta(minutes=1)))
    db.executemany("INSERT INTO article_authors VALUES (?, ?, ?)", _authors(n))
    db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(gen),))
    db.commit()
    db.close()


def edit_old(root: Path, i: int) -> None:
    """A real edit of an old (archived) article: new content, generation bump."""
    db = sqlite3.connect(root / "bench.db")
    gen = int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]) + 1
    db.execute(
        "UPDATE articles SET content_html = ?, changed_generation = ? WHERE id = ?",
        (CONTENT + "<p>Correction.</p>", gen, f"tag:bench.example,2020:/post/story-{i}/"),
    )
    db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(gen),))
    db.commit()
    db.close()


def naive(cfg, store) -> float:  # type: ignore[no-untyped-def]
    """The naive tick: load every visible article, feedgen every current feed."""
    import sqlalchemy as sa

    from feedpub import schema as s
    from feedpub.feeds import feedgen_writer
    from feedpub.feeds.jsonfeed import render_json
    from feedpub.feeds.plan import AuthorRow, feed_specs, make_doc, to_item
    from feedpub.feeds.queries import load_authors

    t = time.perf_counter()
    with store.read() as conn:
        arts = store.load_articles(
            conn, sa.and_(s.articles.c.status == "published", s.articles.c.published <= NOW)
        )
        authors: list[AuthorRow] = load_authors(conn)
    amap = {a.slug: a for a in authors}
    beats = {b.slug: b.title for b in cfg.beats}
    k = cfg.output.items_per_feed
    for spec in feed_specs(cfg, authors):
        if spec.kind.value == "site":
            sel = arts[:k]
        elif spec.kind.value == "beat":
            sel = [a for a in arts if a.beat == spec.key][:k]
        else:
            sel = [a for a in arts if spec.key in a.author_slugs][:k]
        doc = make_doc(cfg, spec, [to_item(a, cfg, amap, beats) for a in sel], page=None, n_full=0)
        feedgen_writer.render_rss(doc)
        feedgen_writer.render_atom(doc)
        render_json(doc)
    return time.perf_counter() - t


def run_size(n: int) -> dict[str, float]:
    from feedpub.config import load_config
    from feedpub.feeds import build_feeds
    from feedpub.store import Store

    with tempfile.TemporaryDirectory(prefix="feedpub-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        generate(root, n)
        gen_s = time.perf_counter() - t
        cfg = load_config(root / "config.toml")
        store = Store(cfg.store_url)
        # (c) force build (first build of the store: writes everything).
        t = time.perf_counter()
        rep = build_feeds(cfg, store, now=NOW, force=True)
        force_s = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # The largest worker process of the force build (none below feed_pool.MIN_SLOTS).
        workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        files = len(rep.written)
        items = rep.items_written
        # (a) nothing changed.
        samples = []
        for _ in range(7):
            t = time.perf_counter()
            r = build_feeds(cfg, store, now=NOW)
            samples.append(time.perf_counter() - t)
            assert r.skipped
        noop_ms = statistics.median(samples) * 1000
        # (b) one new article.
        add_one(root, n)
        t = time.perf_counter()
        r = build_feeds(cfg, store, now=NOW)
        one_ms = (time.perf_counter() - t) * 1000
        one_files = len(r.written)
        # (b2) a correction to an old, archived article: the slow (whole sequence) path.
        edit_old(root, n // 3)
        t = time.perf_counter()
        r = build_feeds(cfg, store, now=NOW)
        edit_ms = (time.perf_counter() - t) * 1000
        edit_files = len(r.written)
        # (d) naive rebuild.
        naive_s = naive(cfg, store)
        store.close()
    return {
        "n": n,
        "generate_s": gen_s,
        "noop_ms": noop_ms,
        "one_new_ms": one_ms,
        "one_new_files": one_files,
        "edit_old_ms": edit_ms,
        "edit_old_files": edit_files,
        "force_s": force_s,
        "force_files": files,
        "force_items": items,
        "force_items_per_s": items / force_s,
        "force_articles_per_s": n / force_s,
        "peak_rss_mb": peak_mb,
        "workers_peak_rss_mb": workers_mb,
        "naive_ms": naive_s * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one)))
        return
    print(
        f"feeds bench: {N_BEATS} beats, {N_AUTHORS} authors, items_per_feed 50, 71 feeds x 3 formats"
    )
    hdr = (
        f"{'articles':>9} {'(a) no-op':>10} {'(b) +1 new':>11} {'(c) force':>10} "
        f"{'items/s':>9} {'articles/s':>10} {'peak RSS':>9} {'(d) naive':>10} {'d/b':>6}"
    )
    print(hdr)
    for n in [int(x) for x in args.sizes.split(",")]:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{n:>9,} {r['noop_ms']:>8.2f}ms {r['one_new_ms']:>9.1f}ms {r['force_s']:>9.1f}s "
            f"{r['force_items_per_s']:>9,.0f} {r['force_articles_per_s']:>10,.0f} "
            f"{r['peak_rss_mb']:>7.0f}MB {r['naive_ms']:>8.0f}ms "
            f"{r['naive_ms'] / r['one_new_ms']:>5.1f}x",
            flush=True,
        )
        print(
            f"{'':>9} force wrote {r['force_files']:,} files, {r['force_items']:,} item entries "
            f"(largest worker {r['workers_peak_rss_mb']:.0f} MB); "
            f"+1 new rewrote {r['one_new_files']} files; store generated in {r['generate_s']:.1f}s"
        )
        print(
            f"{'':>9} (b2) edit of an old archived article: {r['edit_old_ms']:.0f} ms, "
            f"{r['edit_old_files']} files rewritten"
        )
    print("targets: (a) <= 20 ms; (b) <= 150 ms at 100,000; (c) >= 10,000 items/s, <= 300 MB")


if __name__ == "__main__":
    main()
