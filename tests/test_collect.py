"""collect: identity (across renames, sources and URL patterns), change detection and
what moves ``updated``, retraction (never for a broken edit or a folder that cannot be
listed), scheduling, bad files, the CLI."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.collect import collect
from feedpub.feeds import build_feeds
from feedpub.store import Store
from feedpub.types import Article, ArticleStatus

from .conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def all_articles(store: Store) -> dict[str, Article]:
    with store.read() as conn:
        return {a.slug: a for a in store.load_articles(conn)}


def md(title: str, date: str = "2026-11-20 09:00", extra: str = "", body: str = "Body.") -> str:
    return f"---\ntitle: {title}\ndate: {date}\n{extra}---\n{body}\n"


def bump_mtime(path: os.PathLike[str]) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_new_unchanged_updated_and_generation(newsroom: Newsroom) -> None:
    p = newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    r1 = collect(newsroom.config(), store, now=NOW)
    assert r1.counts["new"] == 1 and r1.changed and r1.generation == 1
    first = all_articles(store)["alpha"]

    r2 = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r2.counts["unchanged"] == 1 and not r2.changed and store.generation() == 1

    # Rewritten with identical content (new mtime): re-read, hashed, still unchanged.
    p.write_text(p.read_text())
    bump_mtime(p)
    r3 = collect(newsroom.config(), store, now=NOW + timedelta(hours=2))
    assert r3.counts["unchanged"] == 1 and not r3.changed
    assert all_articles(store)["alpha"].updated == first.updated

    # A real edit: updated moves to the collection time; id and published stay.
    later = NOW + timedelta(hours=3)
    p.write_text(md("Alpha", body="Edited body."))
    bump_mtime(p)
    r4 = collect(newsroom.config(), store, now=later)
    assert r4.counts["updated"] == 1 and r4.changed and store.generation() == 2
    edited = all_articles(store)["alpha"]
    assert edited.id == first.id
    assert edited.published == first.published
    assert edited.updated == later
    assert edited.content_html == "<p>Edited body.</p>"


def test_front_matter_updated_is_used(newsroom: Newsroom) -> None:
    newsroom.write("a.md", md("Alpha", extra="updated: 2026-11-22 10:00\n"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    a = all_articles(store)["alpha"]
    assert a.updated == datetime(2026, 11, 22, 4, 30, tzinfo=UTC)


def test_updated_stated_in_the_future_is_not_published_as_future(newsroom: Newsroom) -> None:
    # "updated: 2031-..." (a typo) made the item and the whole feed "updated" years ahead
    # (W3C "Implausible date"; the feed's date then never moved with new articles).
    p = newsroom.write("a.md", md("Alpha", extra="updated: 2031-01-01 10:00\n"))
    store = newsroom.store()
    r = collect(newsroom.config(), store, now=NOW)
    assert any("a.md" in w and "future" in w for w in r.warnings)
    assert all_articles(store)["alpha"].updated == NOW
    # Re-read unchanged (a rule change, a touch): nothing moves.
    p.write_text(p.read_text())
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r.counts["unchanged"] == 1 and not r.changed
    assert all_articles(store)["alpha"].updated == NOW
    build_feeds(newsroom.config(), store, now=NOW + timedelta(hours=1), ping=False)
    feed = json.loads((newsroom.config().output_dir / "feed.json").read_text())
    assert datetime.fromisoformat(feed["items"][0]["date_modified"]) == NOW


def test_rename_keeps_id(newsroom: Newsroom) -> None:
    p = newsroom.write("old-name.md", md("Stable", extra="slug: stable\n"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = all_articles(store)["stable"]
    p.rename(newsroom.content / "new-name.md")
    r = collect(newsroom.config(), store, now=NOW)
    assert r.counts["retracted"] == 0 and r.counts["new"] == 0
    after = all_articles(store)
    assert list(after) == ["stable"]
    assert after["stable"].id == before.id
    assert after["stable"].status is ArticleStatus.PUBLISHED


def test_counts_cover_every_file_after_a_rename(newsroom: Newsroom) -> None:
    # A renamed, otherwise unchanged file was counted in no column at all.
    newsroom.write("a.md", md("Alpha"))
    newsroom.write("b.md", md("Beta"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    (newsroom.content / "a.md").rename(newsroom.content / "a-renamed.md")
    r = collect(newsroom.config(), store, now=NOW)
    assert r.counts["unchanged"] == 2
    assert sum(r.counts.values()) == 2


TWO_SOURCES = """
[[sources]]
type = "folder"
name = "desk"
path = "desk"
"""


def test_file_moved_to_another_source_keeps_its_article(newsroom: Newsroom) -> None:
    # The second source ("desk") is planned after "content": its claim used to be undone
    # by the first source's retraction of the missing key, permanently (the moved file
    # is then skipped by size and mtime).
    newsroom.set_config(TWO_SOURCES)
    (newsroom.root / "desk").mkdir()
    newsroom.write("story.md", md("Moving story"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = all_articles(store)["moving-story"]
    (newsroom.content / "story.md").rename(newsroom.root / "desk" / "story.md")
    for _ in range(2):  # and stays published on the next collect
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=5))
        assert r.counts["retracted"] == 0 and r.counts["new"] == 0
        after = all_articles(store)["moving-story"]
        assert after.id == before.id and after.status is ArticleStatus.PUBLISHED
    # ...and the other way round (the claiming source planned first).
    (newsroom.root / "desk" / "story.md").rename(newsroom.content / "story.md")
    r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=10))
    assert r.counts["retracted"] == 0
    assert all_articles(store)["moving-story"].status is ArticleStatus.PUBLISHED


def test_url_pattern_change_keeps_ids_and_updated(newsroom: Newsroom) -> None:
    # A site restructure (article_path, or http -> https) re-links every article; ids
    # stay (feed readers' first ask) and so does `updated`: nobody edited the articles.
    newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = all_articles(store)["alpha"]
    cfg = newsroom.config_path.read_text()
    newsroom.config_path.write_text(cfg.replace('"post/{slug}/"', '"news/{slug}/"'))
    r = collect(newsroom.config(), store, now=NOW + timedelta(days=1))
    after = all_articles(store)["alpha"]
    assert r.changed and after.url == "https://news.example/news/alpha/"
    assert after.id == before.id and after.updated == before.updated


def test_delete_and_draft_retract_and_restore(newsroom: Newsroom) -> None:
    a = newsroom.write("a.md", md("Alpha"))
    b = newsroom.write("b.md", md("Beta"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    a.unlink()
    b.write_text(md("Beta", extra="draft: true\n"))
    bump_mtime(b)
    r = collect(newsroom.config(), store, now=NOW)
    assert r.counts["retracted"] == 2 and r.changed
    arts = all_articles(store)
    assert {k: v.status for k, v in arts.items()} == {
        "alpha": ArticleStatus.RETRACTED,
        "beta": ArticleStatus.RETRACTED,
    }
    # Retracted twice is still retracted once: a re-collect changes nothing.
    assert not collect(newsroom.config(), store, now=NOW).changed
    # Un-drafting publishes it again under the same id.
    b.write_text(md("Beta"))
    bump_mtime(b)
    r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=5))
    assert r.counts["updated"] == 1
    beta = all_articles(store)["beta"]
    assert beta.status is ArticleStatus.PUBLISHED and beta.id == arts["beta"].id


def test_future_article_is_scheduled_then_published(newsroom: Newsroom) -> None:
    newsroom.write("f.md", md("Future", date="2026-11-27 09:00"))  # 03:30 UTC on the 27th
    store = newsroom.store()
    r = collect(newsroom.config(), store, now=NOW)
    assert r.counts["scheduled"] == 1
    assert all_articles(store)["future"].status is ArticleStatus.SCHEDULED
    gen = store.generation()
    # Nothing in the file changes; its time comes; the next collect publishes it.
    r = collect(newsroom.config(), store, now=datetime(2026, 11, 27, 3, 31, tzinfo=UTC))
    assert r.changed and store.generation() == gen + 1
    assert all_articles(store)["future"].status is ArticleStatus.PUBLISHED


BROKEN = {
    "badyaml.md": ("---\ntitle: x\ndate: [unclosed\n---\nbody\n", 3, "not valid YAML"),
    "empty.md": ("", None, "empty file"),
    "notitle.md": ("---\ndate: 2026-11-20\n---\nbody\n", 1, "no title"),
    "nodate.md": ("---\ntitle: T\n---\nbody\n", None, "no date"),
    "baddate.md": ("---\ntitle: T\ndate: someday soon\n---\nbody\n", 3, "cannot read date"),
    "unclosed.md": ("---\ntitle: T\n", 1, "never closed"),
    "list.md": ("---\n- a\n- b\n---\nbody\n", 2, "mapping"),
}


def test_broken_files_are_reported_and_never_stop_the_others(newsroom: Newsroom) -> None:
    for name, (text, _line, _why) in BROKEN.items():
        (newsroom.content / name).write_text(text, encoding="utf-8")
    (newsroom.content / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (newsroom.content / "latin1.md").write_bytes(
        "---\ntitle: Café\ndate: 2026-11-20\n---\nna\u00efve\n".encode("latin-1")
    )
    newsroom.write("good.md", md("Good"))
    store = newsroom.store()
    report = collect(newsroom.config(), store, now=NOW)
    assert list(all_articles(store)) == ["good"]
    by_file = {e.source: e for e in report.rejected}
    assert set(by_file) == {*BROKEN, "binary.md", "latin1.md"}
    for name, (_text, line, why) in BROKEN.items():
        assert why in by_file[name].reason, (name, by_file[name])
        assert by_file[name].line == line, name
    assert "binary" in by_file["binary.md"].reason
    assert "UTF-8" in by_file["latin1.md"].reason and by_file["latin1.md"].line == 2
    assert report.counts["rejected"] == len(by_file)
    # Rejected files are not remembered as seen: they are reported again next time.
    again = collect(newsroom.config(), store, now=NOW)
    assert {e.source for e in again.rejected} == set(by_file)


def test_a_broken_edit_keeps_the_last_good_version_published(newsroom: Newsroom) -> None:
    # A typo while correcting a published article (bad YAML, a bad date) rejected the
    # file — and retracted the article from every feed until the typo was fixed.
    p = newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = all_articles(store)["alpha"]
    p.write_text("---\ntitle: Alpha: broken\ndate: 2026-11-20 09:00\n---\nBody, edited.\n")
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r.counts["rejected"] == 1 and r.counts["retracted"] == 0
    assert all_articles(store)["alpha"].status is ArticleStatus.PUBLISHED
    # Still reported on the next collect (not skipped by size and mtime), still published.
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=2))
    assert r.counts["rejected"] == 1 and r.counts["retracted"] == 0
    # Fixed: an ordinary update of the same article.
    p.write_text(md("Alpha", body="Body, edited."))
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=3))
    after = all_articles(store)["alpha"]
    assert r.counts["updated"] == 1 and after.id == before.id
    assert after.status is ArticleStatus.PUBLISHED


def test_duplicate_urls_are_rejected(newsroom: Newsroom) -> None:
    newsroom.write("a.md", md("Same", extra="slug: same\n"))
    newsroom.write("b.md", md("Other", extra="slug: same\n"))
    store = newsroom.store()
    report = collect(newsroom.config(), store, now=NOW)
    (err,) = report.rejected
    assert err.source == "b.md" and "same URL as a.md" in err.reason
    assert [a.title for a in all_articles(store).values()] == ["Same"]


def test_config_rule_change_reparses_unchanged_files(newsroom: Newsroom) -> None:
    newsroom.write("a.md", md("Quantum widgets"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    assert all_articles(store)["quantum-widgets"].beat == "world"
    newsroom.set_config(
        base=newsroom.config_path.read_text().replace(
            'keywords = ["software"]', 'keywords = ["software", "quantum"]'
        )
    )
    r = collect(newsroom.config(), store, now=NOW)
    assert r.counts["updated"] == 1
    assert all_articles(store)["quantum-widgets"].beat == "technology"


def test_beat_refiled_by_a_config_change_does_not_move_updated(newsroom: Newsroom) -> None:
    # A new keyword rule moves an old article to another beat. Its text did not change:
    # its `updated` (what readers show as "updated", Atom §4.2.15) must stay put.
    newsroom.write("a.md", md("Zeta project launches"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    before = all_articles(store)["zeta-project-launches"]
    assert before.beat == "world"
    cfg = newsroom.config_path.read_text()
    newsroom.config_path.write_text(cfg.replace('keywords = ["software"]', 'keywords = ["Zeta"]'))
    r = collect(newsroom.config(), store, now=NOW + timedelta(days=1))
    after = all_articles(store)["zeta-project-launches"]
    assert after.beat == "technology" and r.changed
    assert after.updated == before.updated
    # A real edit afterwards still moves it.
    newsroom.write("a.md", md("Zeta project launches", body="New text."))
    collect(newsroom.config(), store, now=NOW + timedelta(days=2))
    assert all_articles(store)["zeta-project-launches"].updated == NOW + timedelta(days=2)


def test_missing_content_folder_is_a_source_error_not_a_mass_retraction(newsroom: Newsroom) -> None:
    newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    newsroom.content.rename(newsroom.root / "elsewhere")
    r = collect(newsroom.config(), store, now=NOW)
    assert r.source_errors and "content folder not found" in (r.source_errors[0].error or "")
    assert all_articles(store)["alpha"].status is ArticleStatus.PUBLISHED


def test_unreadable_subfolder_retracts_nothing(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sub-folder that cannot be listed (permissions, a flaky network mount) was skipped
    # silently and the listing still counted as complete: all its articles were retracted.
    newsroom.write("desk/a.md", md("Alpha"))
    newsroom.write("b.md", md("Beta"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    real_scandir = os.scandir

    def failing_scandir(path: str) -> object:
        if os.fspath(path).endswith("desk"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing_scandir)
    r = collect(newsroom.config(), store, now=NOW + timedelta(hours=1))
    assert r.counts["retracted"] == 0
    assert all_articles(store)["alpha"].status is ArticleStatus.PUBLISHED
    assert any("desk" in w for w in r.warnings)


def test_cli_collect_summary_and_exit_status(newsroom: Newsroom) -> None:
    newsroom.write("good.md", md("Good"))
    newsroom.write("bad.md", "---\ntitle: x\ndate: [oops\n---\n")
    runner = CliRunner()
    args = ["--config", str(newsroom.config_path), "collect"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "rejected bad.md:3: front matter is not valid YAML" in result.output
    assert "│   1 │" in result.output  # one new
    (newsroom.content / "bad.md").unlink()
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output


def test_rejections_keep_brackets_in_their_reason(newsroom: Newsroom) -> None:
    # A file named "notes [draft].md" was reported as "notes .md".
    newsroom.write("notes [draft].md", "---\ntitle: [broken\n---\nBody.\n")
    res = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "collect"])
    assert res.exit_code == 1, res.output
    [line] = [x for x in res.output.splitlines() if x.startswith("rejected")]
    assert "notes [draft].md:2" in line, line


@pytest.mark.parametrize("authors", ["[Ann One, Ben Two]", "Ann One, Ben Two"])
def test_several_authors(newsroom: Newsroom, authors: str) -> None:
    newsroom.write("a.md", md("Duo", extra=f"author: {authors}\n"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    a = all_articles(store)["duo"]
    assert a.authors == ("Ann One", "Ben Two")
    assert a.author_slugs == ("ann-one", "ben-two")
