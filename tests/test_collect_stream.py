"""A large batch of files is collected in batches (collect_stream.py), each written in a
transaction of its own, and the store and the feeds come out as when everything is
decided in one transaction: the same articles (ids, beats, authors, dates), the same
rejections, drafts and retractions, the same feed files byte for byte; on a first
import and on a re-collect with edits, renames and deletions."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import collect_stream
from feedpub import schema as s
from feedpub.collect import CollectReport, collect
from feedpub.config import load_config
from feedpub.feeds import build_feeds
from feedpub.store import Store
from tests.conftest import SEED, Newsroom

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def story(i: int, *, title: str | None = None, slug: str | None = None) -> str:
    when = datetime(2026, 10, 1, 8, tzinfo=UTC) + timedelta(hours=7 * i)
    return (
        f"---\ntitle: {title or f'Story {i} from the harbour'}\n"
        f"author: {'Iruni Kalupahana' if i % 5 == 0 else f'Reporter {i % 4}'}\n"
        f"date: {when:%Y-%m-%dT%H:%M:%SZ}\ntags: [{'tech' if i % 3 else 'misc'}]\n"
        f"{f'slug: {slug}' if slug else ''}\n{'draft: true' if i % 17 == 5 else ''}\n---\n"
        f"## Part one\n\nThe *port* reopened [here](/post/x-{i}/) on day {i}.\n"
    )


def fill(newsroom: Newsroom) -> None:
    # No config link between Iruni Kalupahana and a beat: the seed's bio line (a .txt
    # file listed after most of the Markdown) files her articles, in every batch.
    newsroom.set_config(
        base=newsroom.config_path.read_text().replace('authors = ["Iruni Kalupahana"]', "")
    )
    for i in range(45):
        newsroom.write(f"{i // 15}/story-{i:02d}.md", story(i))
    newsroom.write("2/zz-same-slug.md", story(46, slug="story-3-from-the-harbour"))
    newsroom.write("bad/broken-yaml.md", "---\ntitle: [unclosed\ndate: 2026-11-01\n---\nx\n")
    newsroom.write("bad/no-date.md", "---\ntitle: No date here\n---\nBody.\n")
    (newsroom.content / "z-seed").mkdir()
    (newsroom.content / "z-seed" / SEED.name).write_bytes(SEED.read_bytes())


def edit(root: Path) -> None:
    content = root / "content"
    (content / "0/story-01.md").write_text(story(1, title="Story one, corrected"))
    (content / "0/story-02.md").rename(content / "0/story-02-renamed.md")
    (content / "1/story-20.md").unlink()
    (content / "1/story-23.md").write_text(story(23).replace("tags: [tech]", "draft: true"))
    (content / "2/story-50.md").write_text(story(50))


def publish(root: Path) -> tuple[CollectReport, dict[str, bytes], list[tuple[object, ...]]]:
    config = load_config(root / "config.toml")
    store = Store(config.store_url)
    try:
        report = collect(config, store, now=NOW)
        build_feeds(config, store, now=NOW, ping=False)
        with store.read() as conn:
            a = s.articles
            cols = [c for c in a.c if c.name != "changed_generation"]  # batches bump it more
            rows = [tuple(r) for r in conn.execute(sa.select(*cols)).all()]
            for t in (s.article_authors, s.authors, s.source_state):
                rows += [(t.name, *r) for r in conn.execute(sa.select(t)).all()]
            f = s.source_files  # the edits of the twin newsrooms differ in mtime only
            rows += [tuple(r) for r in conn.execute(sa.select(f.c.source, f.c.path, f.c.size))]
    finally:
        store.close()
    out = root / "feeds"
    feeds = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return report, feeds, sorted(rows, key=repr)


def same(a: CollectReport, b: CollectReport) -> None:
    assert a.counts == b.counts
    assert sorted(str(e) for e in a.rejected) == sorted(str(e) for e in b.rejected)
    assert sorted(a.warnings) == sorted(b.warnings)
    assert [(r.name, r.status, r.counts) for r in a.sources] == [
        (r.name, r.status, r.counts) for r in b.sources
    ]


def test_batches_store_and_publish_what_one_transaction_does(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(newsroom)
    other = tmp_path / "twin"
    shutil.copytree(newsroom.root, other, symlinks=True)

    monkeypatch.setattr(collect_stream, "STREAM_MIN", 10**9)
    monkeypatch.setattr("feedpub.collect.STREAM_MIN", 10**9)
    whole = publish(newsroom.root)
    monkeypatch.setattr("feedpub.collect.STREAM_MIN", 2)
    monkeypatch.setattr(collect_stream, "BATCH", 7)
    batched = publish(other)

    assert whole[0].counts["new"] > 30 and whole[0].rejected
    assert any("same URL" in str(e) for e in whole[0].rejected)
    same(whole[0], batched[0])
    assert whole[1] and whole[1] == batched[1]
    assert whole[2] == batched[2]
    with Store(load_config(other / "config.toml").store_url) as store, store.read() as conn:
        beats = dict(
            conn.execute(
                sa.select(s.article_authors.c.article_id, s.articles.c.beat)
                .join(s.articles)
                .where(s.article_authors.c.author_slug == "iruni-kalupahana")
            ).all()
        )
        batches_written = store.generation(conn)
    assert len(beats) > 5 and set(beats.values()) == {"russia-ukraine-war"}
    assert batches_written > 5  # a generation per batch: the batches did write separately

    # Edits, a rename, a deletion, a file made a draft, a new file: the same again.
    edit(newsroom.root)
    edit(other)
    monkeypatch.setattr("feedpub.collect.STREAM_MIN", 10**9)
    whole2 = publish(newsroom.root)
    monkeypatch.setattr("feedpub.collect.STREAM_MIN", 2)
    batched2 = publish(other)
    assert whole2[0].counts["retracted"] == 2 and whole2[0].counts["updated"] >= 1
    same(whole2[0], batched2[0])
    assert whole2[1] == batched2[1]
    assert whole2[2] == batched2[2]
