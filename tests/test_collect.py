"""collect: identity, change detection, retraction, scheduling, bad files, the CLI."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.collect import collect
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


def test_missing_content_folder_is_a_source_error_not_a_mass_retraction(newsroom: Newsroom) -> None:
    newsroom.write("a.md", md("Alpha"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    newsroom.content.rename(newsroom.root / "elsewhere")
    r = collect(newsroom.config(), store, now=NOW)
    assert r.source_errors and "content folder not found" in (r.source_errors[0].error or "")
    assert all_articles(store)["alpha"].status is ArticleStatus.PUBLISHED


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


@pytest.mark.parametrize("authors", ["[Ann One, Ben Two]", "Ann One, Ben Two"])
def test_several_authors(newsroom: Newsroom, authors: str) -> None:
    newsroom.write("a.md", md("Duo", extra=f"author: {authors}\n"))
    store = newsroom.store()
    collect(newsroom.config(), store, now=NOW)
    a = all_articles(store)["duo"]
    assert a.authors == ("Ann One", "Ben Two")
    assert a.author_slugs == ("ann-one", "ben-two")
