"""A re-collect with nothing changed decides from the files' stats and one query, without
loading every stored article's keys; what it must still notice it notices: an article
whose file was rejected last time and is deleted now is retracted."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import collect as collect_module
from feedpub import schema as s
from feedpub.collect import collect
from tests.conftest import Newsroom

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def story(title: str) -> str:
    return f"---\ntitle: {title}\ndate: 2026-11-20T09:00:00Z\nbeat: world\n---\n{title}.\n"


def statuses(newsroom: Newsroom) -> dict[str, str]:
    with newsroom.store() as store, store.read() as conn:
        a = s.articles
        return dict(conn.execute(sa.select(a.c.source_key, a.c.status)).all())


def test_deleting_a_file_rejected_last_time_retracts_its_article(newsroom: Newsroom) -> None:
    newsroom.write("a.md", story("Harbour"))
    newsroom.write("b.md", story("Ferry"))
    with newsroom.store() as store:
        assert collect(newsroom.config(), store, now=NOW).counts["new"] == 2
        newsroom.write("a.md", "---\ntitle: [broken\n---\n")
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=1))
        assert len(r.rejected) == 1
        assert statuses(newsroom) == {"a.md": "published", "b.md": "published"}
        (newsroom.content / "a.md").unlink()
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=2))
        assert r.counts["retracted"] == 1
        assert statuses(newsroom) == {"a.md": "retracted", "b.md": "published"}
        again = collect(newsroom.config(), store, now=NOW + timedelta(minutes=3))
        assert not again.changed and again.counts["unchanged"] == 1


def test_nothing_changed_changes_nothing_and_a_deleted_file_is_retracted(
    newsroom: Newsroom,
) -> None:
    for i in range(5):
        newsroom.write(f"d{i}/s{i}.md", story(f"Story {i}"))
    with newsroom.store() as store:
        collect(newsroom.config(), store, now=NOW)
        gen = store.generation()
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=1))
        assert not r.changed and r.counts["unchanged"] == 5 and store.generation() == gen
        (newsroom.content / "d3" / "s3.md").unlink()
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=2))
        assert r.counts["retracted"] == 1 and r.changed


def scenario(newsroom: Newsroom) -> tuple[object, ...]:
    newsroom.write("a.md", story("Harbour"))
    newsroom.write("b.md", "---\ntitle: Ferry\nid: fixed-id-1\ndate: 2026-11-20\n---\nF.\n")
    for i in range(5):
        newsroom.write(f"other{i}.md", story(f"Other {i}"))
    with newsroom.store() as store:
        first = collect(newsroom.config(), store, now=NOW)
        newsroom.write("dup-url.md", story("Harbour"))  # same slug, so the same URL as a.md
        newsroom.write("dup-id.md", "---\ntitle: Boat\nid: fixed-id-1\ndate: 2026-11-21\n---\nB\n")
        newsroom.write("other2.md", story("Other 2") + "More.\n")
        newsroom.write("new.md", story("Brand new"))
        r = collect(newsroom.config(), store, now=NOW + timedelta(minutes=1))
        with store.read() as conn:
            a = s.articles
            rows = sorted(
                tuple(x)
                for x in conn.execute(sa.select(a.c.id, a.c.source_key, a.c.url, a.c.status))
            )
    return first.counts, r.counts, sorted(str(e) for e in r.rejected), rows


def test_new_and_edited_files_are_decided_as_against_every_stored_article(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without retractions possible, only the stored articles with the new files' keys,
    URLs or ids are read; the decisions are those taken with every article loaded."""
    some = scenario(newsroom)
    assert some[1]["new"] == 1 and some[1]["updated"] >= 1
    assert any("same URL as a.md" in e for e in some[2])
    real = collect_module._states_needed
    monkeypatch.setattr(
        collect_module,
        "_states_needed",
        lambda *args: "all" if real(*args) != "none" else "none",
    )
    (tmp_path / "all" / "content").mkdir(parents=True)
    shutil.copy(newsroom.config_path, tmp_path / "all" / "config.toml")
    everything = scenario(Newsroom(tmp_path / "all", tmp_path / "all" / "config.toml"))
    assert some == everything
