"""A full build assembles archive pages from each article's entries rendered once
(feeds/render.py, feeds/fragments.py): the files, the build's record and its report are
exactly those of the plain path (every document rendered from its own items), whatever
the cache holds, and the cache never holds more than its cap."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa
from lxml import etree

from feedpub import schema as s
from feedpub.collect import collect
from feedpub.config import load_config
from feedpub.feeds import BuildReport, build_feeds, builder, fragments, render
from feedpub.feeds.fragments import Fragment, FragmentCache
from feedpub.store import Store
from tests.conftest import BASE_CONFIG, Newsroom

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"
EXTRA = """
[[authors]]
name = "Reporter 1"
email = "r1@news.example"
uri = "https://r1.example/"

[[authors]]
name = "Reporter 2"
email = "r2@news.example"
"""


def _fill(newsroom: Newsroom, n: int = 48) -> None:
    """Articles with everything an entry can carry: images (with and without length,
    alt, sizes), another language, authors with and without email, two authors, tags
    that repeat the beat, text to escape, no summary, a scheduled one."""
    start = datetime(2026, 9, 1, 8, tzinfo=UTC)
    for i in range(n):
        when = start + timedelta(hours=11 * i)
        author = f"Reporter {i % 4}" if i % 9 else f"[Reporter {i % 4}, Reporter {(i + 1) % 4}]"
        image = ""
        if i % 3 == 0:
            image = f"image: https://news.example/img/{i}.jpg\n"
        elif i % 3 == 1:
            image = (
                f'image:\n  url: /img/{i}.png\n  alt: A "quoted" <pier> & boats\n'
                f"  width: 1200\n  height: 800\n  length: {1000 + i}\n"
            )
        lang = "language: fr\n" if i % 7 == 3 else ""
        summary = "" if i % 5 == 2 else f'summary: "Short & <sharp> {i} ünïcødé 🎉"\n'
        tags = "[tech, Technology]" if i % 2 else "[ukraine]"
        newsroom.write(
            f"{i // 16}/s{i:02d}.md",
            f'---\ntitle: "Story {i}: pier & <harbour> \\"news\\""\nauthor: {author}\n'
            f"date: {when:%Y-%m-%dT%H:%M:%SZ}\ntags: {tags}\n{image}{lang}{summary}---\n"
            f"## Part {i}\n\nThe *port* reopened [here](/post/x-{i}/) on day {i} & "
            f"the <b>crowd</b> cheered: “{i}”.\n",
        )
    later = NOW + timedelta(days=3)  # scheduled: stored, not yet visible
    newsroom.write("later.md", f"---\ntitle: Later\ndate: {later:%Y-%m-%dT%H:%M:%SZ}\n---\nx\n")


def _build(
    root: Path, *, force: bool = False
) -> tuple[BuildReport, dict[str, bytes], list[object]]:
    config = load_config(root / "config.toml")
    with Store(config.store_url) as store:
        report = build_feeds(config, store, now=NOW, force=force, ping=False)
        with store.read() as conn:
            rows: list[object] = [
                tuple(r) for r in sorted(tuple(r) for r in conn.execute(sa.select(s.feed_files)))
            ]
    out = root / "feeds"
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return report, files, rows


def _newsroom(newsroom: Newsroom, extra: str = "") -> None:
    base = BASE_CONFIG.replace("items_per_feed = 5", "items_per_feed = 3" + extra)
    newsroom.set_config(EXTRA, base=base)
    _fill(newsroom)
    config = newsroom.config()
    with Store(config.store_url) as store:
        collect(config, store, now=NOW)


def _twins(newsroom: Newsroom, tmp_path: Path, n: int) -> list[Path]:
    out = []
    for k in range(n):
        twin = tmp_path / f"twin{k}"
        shutil.copytree(newsroom.root, twin, symlinks=True)
        out.append(twin)
    return out


class _Recording(FragmentCache):
    """The real cache, remembering every instance a build made."""

    made: ClassVar[list[FragmentCache]] = []

    def __init__(self, max_bytes: int | None = None) -> None:
        super().__init__(max_bytes)
        _Recording.made.append(self)


def test_reused_entries_write_exactly_what_the_plain_path_writes(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _newsroom(newsroom)
    plain_root, small_root = _twins(newsroom, tmp_path, 2)
    monkeypatch.setattr(builder, "FragmentCache", _Recording)
    _Recording.made = []

    monkeypatch.setattr(render, "REUSE", False)
    plain = _build(plain_root)
    assert all(c.hits == 0 and c.misses == 0 for c in _Recording.made)  # nothing reused

    monkeypatch.setattr(render, "REUSE", True)
    _Recording.made = []
    reused = _build(newsroom.root)
    # Each article's entries rendered once (cache misses), though the archive pages hold
    # each about three times...
    entries = sum(
        len(json.loads(data)["items"])
        for path, data in plain[1].items()
        if path.endswith("feed.json") and "archive/" in path
    )
    rendered = sum(c.misses for c in _Recording.made)
    assert 0 < rendered <= 49 and entries > 2 * rendered
    # ... and it made no difference, to any byte, row or line of the report.
    assert reused[1] == plain[1]
    assert reused[2] == plain[2]
    assert reused[0].summary() == plain[0].summary()
    assert reused[0].written == plain[0].written
    assert any("/archive/" in p for p in plain[1]) and len(plain[1]) > 60

    # A cache of ~3 entries, documents taken one by one: most entries are forgotten
    # before they are needed again; still the same bytes, and never more than the cap.
    cap = 3 * max(_Recording.made[0].peak_bytes // max(len(_Recording.made[0]), 1), 1)
    monkeypatch.setattr(fragments, "MAX_BYTES", cap)
    monkeypatch.setattr(render, "BATCH_ITEMS", 1)
    _Recording.made = []
    small = _build(small_root)
    assert small[1] == plain[1] and small[2] == plain[2]
    assert small[0].written == plain[0].written
    assert _Recording.made and all(0 < c.peak_bytes <= cap for c in _Recording.made)
    assert sum(c.misses for c in _Recording.made) > rendered  # rendered again
    assert sum(c.hits for c in _Recording.made) > 0

    # Forced again over the same files: nothing to write, nothing different.
    again = _build(newsroom.root, force=True)
    assert again[0].written == [] and again[1] == plain[1]


def test_assembled_archive_pages_are_well_formed_feeds(newsroom: Newsroom) -> None:
    _newsroom(newsroom)
    _report, files, _rows = _build(newsroom.root)
    pages = sorted(p for p in files if "/archive/" in p or p.startswith("archive/"))
    assert len(pages) >= 9
    db = sqlite3.connect(newsroom.root / "feedpub.db")
    titles = {r[0]: r[1] for r in db.execute("SELECT id, title FROM articles")}
    db.close()
    for path in pages:
        data = files[path]
        if path.endswith("feed.json"):
            doc = json.loads(data)
            ids = [i["id"] for i in doc["items"]]
            assert doc["version"] == "https://jsonfeed.org/version/1.1"
            assert all(i["title"] == titles[i["id"]] for i in doc["items"])
        elif path.endswith("rss.xml"):
            root = etree.fromstring(data)
            items = root.findall("channel/item")
            ids = [i.findtext("guid") for i in items]
            assert root.find("channel/{http://purl.org/syndication/history/1.0}archive") is not None
            assert all(i.findtext("title") == titles[i.findtext("guid")] for i in items)
        else:
            root = etree.fromstring(data)
            ids = [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]
        assert 1 <= len(ids) <= 3 and len(set(ids)) == len(ids), path
    # The three formats of a page hold the same articles, newest first.
    site = {f: files[f"archive/1/{f}"] for f in ("rss.xml", "atom.xml", "feed.json")}
    rss_ids = [i.findtext("guid") for i in etree.fromstring(site["rss.xml"]).iter("item")]
    json_ids = [i["id"] for i in json.loads(site["feed.json"])["items"]]
    assert rss_ids == json_ids


def test_refused_articles_and_the_byte_budget_take_the_plain_path(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archived article the build cannot turn into an item is left out and named; a page over
    max_feed_bytes carries summaries: exactly as the plain path does it."""
    _newsroom(newsroom, extra="\nmax_feed_bytes = 10_000")
    for i in (0, 4, 7):  # long bodies: their archive pages go over the budget
        p = newsroom.content / "0" / f"s{i:02d}.md"
        p.write_text(p.read_text() + " ".join(f"w{i}x{k}" for k in range(2500)) + "\n")
    config = newsroom.config()
    with Store(config.store_url) as store:
        collect(config, store, now=NOW)
    db = sqlite3.connect(newsroom.root / "feedpub.db")
    with db:
        (bad,) = db.execute("SELECT id FROM articles WHERE title LIKE 'Story 2:%'").fetchone()
        # Stored by an older version: a tag that is not text (to_item cannot use it).
        db.execute("UPDATE articles SET tags = '[7]' WHERE id = ?", (bad,))
    db.close()
    (plain_root,) = _twins(newsroom, tmp_path, 1)
    monkeypatch.setattr(render, "REUSE", False)
    plain = _build(plain_root)
    monkeypatch.setattr(render, "REUSE", True)
    reused = _build(newsroom.root)
    assert bad in plain[0].refused and plain[0].summarized
    assert any("/archive/" in p or p.startswith("archive/") for p in plain[0].summarized)
    assert reused[1] == plain[1] and reused[2] == plain[2]
    assert reused[0].refused == plain[0].refused
    assert reused[0].summarized == plain[0].summarized
    assert reused[0].written == plain[0].written


def _frag(i: int, size: int) -> Fragment:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return Fragment(f"id-{i:03d}", t, t, b"r" * size, b"a" * size, b"j" * size)


def test_the_cache_keeps_at_most_its_cap_and_forgets_the_least_recently_used() -> None:
    one = _frag(0, 1000).size
    cache = FragmentCache(max_bytes=one * 4)
    for i in range(4):
        cache.put((f"id-{i:03d}", 1), _frag(i, 1000))
    assert len(cache) == 4 and cache.bytes == one * 4
    assert cache.get(("id-000", 1)) is not None  # now the most recently used
    cache.put(("id-004", 1), _frag(4, 1000))
    assert cache.get(("id-001", 1)) is None  # the least recently used went
    assert cache.get(("id-000", 1)) is not None and cache.get(("id-004", 1)) is not None
    assert cache.get(("id-004", 2)) is None  # another generation is another entry
    for i in range(5, 40):
        cache.put((f"id-{i:03d}", 1), _frag(i, 1000))
        assert cache.bytes <= cache.max_bytes
    assert cache.peak_bytes <= cache.max_bytes and len(cache) == 4
    cache.put(("huge", 1), _frag(99, 10 * 1000))  # larger than the cap: not kept
    assert cache.get(("huge", 1)) is None and len(cache) == 4
    assert FragmentCache(max_bytes=0).max_bytes == 0
    empty = FragmentCache(max_bytes=0)
    empty.put(("id-000", 1), _frag(0, 10))
    assert len(empty) == 0 and empty.peak_bytes == 0
