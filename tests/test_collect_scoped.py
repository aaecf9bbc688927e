"""A hinted collect reads the file stats of the changed folders only (feedpub.collect_scope):
the trusted folders are counted in the store, not loaded, and the run ends exactly as
the full collect does: same articles, same recorded files, same feeds, same report."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import collect as collect_module
from feedpub import schema as s
from feedpub.collect import collect
from feedpub.collect_scope import scoped
from feedpub.config import source_name
from feedpub.sources.walk import FolderHint, fingerprint, folder_of
from feedpub.store import Store
from feedpub.store_files import folder_counts, folder_stats
from tests.conftest import Newsroom
from tests.test_publish_quiet import NOW, Pair, story


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    monkeypatch.setenv("FEEDPUB_TEST_SECRET", "test-secret-key")
    return Pair(tmp_path)


@pytest.fixture
def scopes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object]]]:
    """The scope each collect of the quiet newsroom read: (newsroom, Scope or None)."""
    seen: list[tuple[str, object]] = []
    real = collect_module.scoped

    def spy(conn, source, hint):  # type: ignore[no-untyped-def]
        got = real(conn, source, hint)
        seen.append((str(conn.engine.url), got))
        return got

    monkeypatch.setattr(collect_module, "scoped", spy)
    yield seen


def _quiet_scopes(seen: list[tuple[str, object]]) -> list[object]:
    return [s for url, s in seen if "/quiet/" in url]


def _newsroom(pair: Pair, folders: int = 4, per: int = 3) -> None:
    for f in range(folders):
        for i in range(per):
            pair.write(f"f{f}/s{i}.md", story(f"Story {f} {i}"))


def test_one_new_file_reads_the_rows_of_its_folder_alone(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    _newsroom(pair)
    pair.publish(NOW)
    pair.write("f2/new.md", story("Fresh"))
    code, out, _ = pair.publish(NOW + timedelta(minutes=1))
    assert code == 0 and "│   1 │" in out  # one new
    (scope,) = _quiet_scopes(scopes)
    assert scope is not None
    assert scope.walked == frozenset({"f2/"})  # type: ignore[attr-defined]
    assert sorted(scope.trusted) == ["", "f0/", "f1/", "f3/"]  # type: ignore[attr-defined]
    assert sorted(scope.stats) == ["f2/s0.md", "f2/s1.md", "f2/s2.md"]  # type: ignore[attr-defined]
    # The report counts the trusted folders' files as unchanged, as the full run does
    # (Pair.publish compared both outputs); the new file's stats were recorded.
    with sqlite3.connect(pair.quiet / "feedpub.db") as conn:
        paths = [r[0] for r in conn.execute("SELECT path FROM source_files ORDER BY path")]
    assert paths == sorted([f"f{f}/s{i}.md" for f in range(4) for i in range(3)] + ["f2/new.md"])


def test_a_new_file_with_the_url_of_a_trusted_folders_article_is_a_duplicate_not_a_move(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    """The decision looks up the stored article by URL; its file lies in a folder that
    was not listed, and it is still there: the new file is rejected, nothing moves."""
    _newsroom(pair)
    pair.publish(NOW)
    pair.write("f3/twin.md", story("Story 1 2"))  # same title, so same URL, as f1/s2.md
    code, _out, err = pair.publish(NOW + timedelta(minutes=1))
    assert code == 1 and "same URL as f1/s2.md" in err
    assert _quiet_scopes(scopes)[0] is not None
    with sqlite3.connect(pair.quiet / "feedpub.db") as conn:
        keys = [r[0] for r in conn.execute("SELECT source_key FROM articles ORDER BY 1")]
    assert "f1/s2.md" in keys and "f3/twin.md" not in keys


def test_a_new_file_naming_the_id_of_a_trusted_folders_article_takes_it_over(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    """An explicit id names the article, wherever its file lies: the decision finds it
    by id, in a folder that was not listed, exactly as the full collect does."""
    _newsroom(pair)
    pair.publish(NOW)
    with sqlite3.connect(pair.quiet / "feedpub.db") as conn:
        (taken,) = conn.execute("SELECT id FROM articles WHERE source_key = 'f0/s1.md'").fetchone()
    text = story("Another Story").replace("---\n", f"---\nid: {taken}\n", 1)
    pair.write("f3/claim.md", text)
    pair.publish(NOW + timedelta(minutes=1))  # compares with the full collect
    assert _quiet_scopes(scopes)[0] is not None
    with sqlite3.connect(pair.quiet / "feedpub.db") as conn:
        row = conn.execute(
            "SELECT source_key, title FROM articles WHERE id = ?", (taken,)
        ).fetchone()
    assert row == ("f3/claim.md", "Another Story")


def test_a_file_moved_between_folders_keeps_its_article(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    _newsroom(pair)
    pair.publish(NOW)
    for root in pair.both():
        (root / "content" / "f0" / "s0.md").rename(root / "content" / "f3" / "moved.md")
    pair.publish(NOW + timedelta(minutes=1))
    with sqlite3.connect(pair.quiet / "feedpub.db") as conn:
        rows = conn.execute("SELECT source_key, status FROM articles ORDER BY 1").fetchall()
    assert ("f3/moved.md", "published") in rows and all(k != "f0/s0.md" for k, _ in rows)


def test_a_rejected_file_keeps_its_folder_walked(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    """A folder holding a file the parser rejects has fewer recorded files than the
    listing counts: it is never trusted, and the file is named again at every run."""
    _newsroom(pair)
    pair.write("f1/bad.md", "---\ntitle: [broken\n---\n")
    pair.publish(NOW)
    pair.write("f2/new.md", story("Fresh"))
    code, _out, err = pair.publish(NOW + timedelta(minutes=1))
    assert code == 1 and "f1/bad.md:2" in err
    (scope,) = _quiet_scopes(scopes)
    assert scope is not None and "f1/" not in scope.trusted  # type: ignore[attr-defined]
    assert scope.walked == frozenset({"f1/", "f2/"})  # type: ignore[attr-defined]


def test_a_folder_removed_with_another_change_is_read_whole_and_retracted(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    _newsroom(pair)
    pair.publish(NOW)
    pair.write("f0/s0.md", story("Story 0 0", body="Edited."))
    for root in pair.both():
        for p in sorted((root / "content" / "f3").iterdir()):
            p.unlink()
        (root / "content" / "f3").rmdir()
    pair.publish(NOW + timedelta(minutes=1))
    with sqlite3.connect(pair.quiet / "feedpub.db") as conn:
        gone = [
            r[0]
            for r in conn.execute(
                "SELECT source_key FROM articles WHERE status = 'retracted' ORDER BY 1"
            )
        ]
    assert gone == ["f3/s0.md", "f3/s1.md", "f3/s2.md"]


def test_folder_names_outside_ascii_and_nested_folders_are_ranged_exactly(
    pair: Pair, scopes: list[tuple[str, object]]
) -> None:
    """A folder's rows are a range of the key: a sibling whose name extends it
    ("é" and "é2"), a subfolder and a file at the top are none of its rows."""
    for rel in ("é/a.md", "é/sub/b.md", "é2/c.md", "top.md", "é/sub/deeper/d.md"):
        pair.write(rel, story(rel.replace("/", " ").removesuffix(".md").title()))
    pair.publish(NOW)
    pair.write("é/new.md", story("New Accent"))
    pair.publish(NOW + timedelta(minutes=1))
    (scope,) = _quiet_scopes(scopes)
    assert scope is not None
    assert scope.walked == frozenset({"é/"})  # type: ignore[attr-defined]
    assert sorted(scope.stats) == ["é/a.md"]  # type: ignore[attr-defined]
    assert sorted(scope.trusted) == ["", "é/sub/", "é/sub/deeper/", "é2/"]  # type: ignore[attr-defined]


def test_many_changed_files_in_batches_decide_against_the_whole_listing(
    pair: Pair, scopes: list[tuple[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scoped listing parsed in batches (collect_stream) is widened first: the batches
    compare with every present file, as the full walk's would."""
    monkeypatch.setattr("feedpub.collect.STREAM_MIN", 2)
    monkeypatch.setattr("feedpub.collect_stream.BATCH", 2)
    _newsroom(pair)
    pair.publish(NOW)
    for i in range(5):
        pair.write(f"f2/n{i}.md", story(f"Batch {i}"))
    pair.write("f2/twin.md", story("Story 0 1"))  # the URL of f0/s1.md, a trusted folder
    code, _out, err = pair.publish(NOW + timedelta(minutes=1))
    assert code == 1 and "same URL as f0/s1.md" in err
    assert _quiet_scopes(scopes)[0] is not None


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedpub.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_the_scope_is_none_when_rows_lie_outside_the_folders_it_names(
    tmp_path: Path, store_url: str
) -> None:
    """Rows of a folder that is neither trusted nor walked (gone since): the whole table
    is read. A folder whose recorded count differs is walked, not trusted. SQLite takes
    a folder's rows as a range of the key, PostgreSQL by the folder of each path."""
    content = tmp_path / "content"
    for rel in ("a/x.md", "b/y.md", "b/z.md", "c/w.md"):
        (content / rel).parent.mkdir(parents=True, exist_ok=True)
        (content / rel).write_text(rel)
    fp = fingerprint(content)
    assert fp is not None
    store = Store(store_url)
    rows = [("a/x.md", 3), ("b/y.md", 3), ("b/z.md", 3), ("c/w.md", 3)]
    others = [("a/x", 1), ("a/x.md/", 1), ("b", 1), ("ab/y.md", 1)]  # another source
    with store.begin() as conn:
        conn.execute(
            sa.insert(s.source_files),
            [{"source": "src", "path": p, "size": z, "mtime_ns": 0} for p, z in rows]
            + [{"source": "other", "path": p, "size": z, "mtime_ns": 0} for p, z in others],
        )
    hint = FolderHint({d: v for d, v in fp.items() if d != "c/"}, frozenset(fp))
    with store.read() as conn:
        scope = scoped(conn, "src", hint)
    assert scope is not None and scope.walked == frozenset({"c/"})
    assert sorted(scope.trusted) == ["", "a/", "b/"] and list(scope.stats) == ["c/w.md"]
    with store.begin() as conn:  # b/ recorded one file fewer than its listing counts
        conn.exec_driver_sql("DELETE FROM source_files WHERE path = 'b/z.md'")
    with store.read() as conn:
        scope = scoped(conn, "src", hint)
    assert scope is not None and scope.walked == frozenset({"b/", "c/"})
    # A hint from a clean store (no_orphans) is not counted folder by folder; the total
    # still has to agree, and here it does not: the whole table is read.
    clean = FolderHint(hint.unchanged, hint.dirs, no_orphans=True)
    with store.read() as conn:
        assert scoped(conn, "src", clean) is None
    # A clean hint that says what its listing counted (listed_files) is taken at its word
    # as the row count, with no count query: told the truth (3 rows, which the 4 files of
    # the named folders do not match), the whole table is read as above. Without
    # no_orphans the store counts, whatever the listing counted: b/ is walked, as above.
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for listed, clean_store, agrees, counts in (
        (3, True, False, False),
        (4, True, True, False),
        (4, False, True, True),
    ):
        told = FolderHint(hint.unchanged, hint.dirs, no_orphans=clean_store, listed_files=listed)
        statements.clear()
        with store.read() as conn:
            scope = scoped(conn, "src", told)
        assert (scope is not None) is agrees
        assert any("count(" in q.lower() for q in statements) is counts, statements
        if scope is not None:
            assert scope.walked == frozenset({"c/"} if clean_store else {"b/", "c/"})
    without_c = FolderHint(
        {d: v for d, v in fp.items() if d != "c/"}, frozenset(d for d in fp if d != "c/")
    )
    with store.read() as conn:  # c/'s row is in no folder the hint names
        assert scoped(conn, "src", without_c) is None
    store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_to_a_tree_end_as_the_full_collect_does(
    pair: Pair, scopes: list[tuple[str, object]], seed: int
) -> None:
    """Files written, edited, touched, renamed within and across folders, deleted, whole
    folders removed, files broken and mended, titles reused (URL clashes), in random
    order: after every step the hinted publish ends as the full one (Pair.publish
    compares reports, exit status, runs, the store's articles and files, the feeds)."""
    rng = random.Random(seed)
    folders = ["", "a/", "a/b/", "c/", "c/d/", "e/"]
    titles = [f"Title {i}" for i in range(12)]  # few: some files share a URL
    t = NOW

    def files() -> list[str]:
        content = pair.quiet / "content"
        return sorted(str(p.relative_to(content)) for p in content.rglob("*.md"))

    def both(action: Callable[[Path], None]) -> None:
        for root in pair.both():
            action(root / "content")

    for n in range(6):
        pair.write(f"{folders[n % len(folders)]}f{n}.md", story(titles[n]))
    pair.publish(t)
    for step in range(25):
        t += timedelta(minutes=1)
        existing = files()
        op = rng.choice(
            ["new", "new", "edit", "touch", "move", "delete", "rmdir", "mvdir", "draft", "break"]
        )
        if op == "new" or not existing:
            folder = rng.choice(folders)
            pair.write(f"{folder}n{step}.md", story(rng.choice(titles), body=f"step {step}"))
        elif op == "edit":
            pair.write(rng.choice(existing), story(rng.choice(titles), body=f"edit {step}"))
        elif op == "touch":
            rel = rng.choice(existing)

            def touch(content: Path, rel: str = rel) -> None:
                st = (content / rel).stat()
                os.utime(content / rel, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

            both(touch)
        elif op == "move":
            rel, to = rng.choice(existing), f"{rng.choice(folders)}m{step}.md"

            def move(content: Path, rel: str = rel, to: str = to) -> None:
                (content / to).parent.mkdir(parents=True, exist_ok=True)
                (content / rel).rename(content / to)

            both(move)
        elif op == "delete":
            rel = rng.choice(existing)
            both(lambda content, rel=rel: (content / rel).unlink())
        elif op == "rmdir":
            folder = rng.choice(folders[1:])
            both(lambda content, folder=folder: shutil.rmtree(content / folder, True))
        elif op == "mvdir":
            folder, to = rng.choice(folders[1:]), rng.choice(folders[1:])

            def mvdir(content: Path, folder: str = folder, to: str = to) -> None:
                if (
                    (content / folder).is_dir()
                    and not (content / to).exists()
                    and not to.startswith(folder)
                ):
                    (content / to).parent.mkdir(parents=True, exist_ok=True)
                    (content / folder).rename(content / to)

            both(mvdir)
        elif op == "draft":
            rel = rng.choice(existing)
            pair.write(rel, story(rng.choice(titles)).replace("---\n", "---\ndraft: true\n", 1))
        else:
            pair.write(rng.choice(existing), "---\ntitle: [broken\n---\n")
        pair.publish(t)  # asserts the two newsrooms agree
    assert any(s is not None for s in _quiet_scopes(scopes))


def _stored(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with store.read() as conn:
        a, f = s.articles, s.source_files
        arts = conn.execute(
            sa.select(a.c.id, a.c.source_key, a.c.url, a.c.status, a.c.content_hash).order_by(
                a.c.id
            )
        ).all()
        files = conn.execute(sa.select(f.c.path, f.c.size, f.c.mtime_ns).order_by(f.c.path)).all()
    return [tuple(r) for r in arts], [tuple(r) for r in files]


@pytest.mark.parametrize("seed", [9, 18])  # 18: a URL a retracted and a live article had
def test_hinted_collects_into_postgresql_end_as_full_collects(
    seed: int,
    newsroom: Newsroom,
    pg_url: str,
    tmp_path: Path,
    scopes: list[tuple[str, object]],
) -> None:
    """On PostgreSQL a folder's rows are found by the folder of each path, not by a key
    range: random changes, each collected with a hint into PostgreSQL and without one
    into SQLite, leave both stores alike and are counted alike."""
    config = newsroom.config()
    name = source_name(config.sources[0])
    pg, full = Store(pg_url), Store(f"sqlite:///{tmp_path / 'full.db'}")
    rng = random.Random(seed)
    folders = ["", "a/", "a/b/", "c/", "é/"]
    titles = [f"Title {i}" for i in range(8)]
    for n, folder in enumerate(folders):
        newsroom.write(f"{folder}f{n}.md", story(titles[n]))
    t = NOW
    try:
        report = collect(config, pg, now=t)
        collect(config, full, now=t)
        for step in range(14):
            t += timedelta(minutes=1)
            listing, clean = report.sources[0].listing_fingerprint, not report.rejected
            content = newsroom.content
            existing = sorted(str(p.relative_to(content)) for p in content.rglob("*.md"))
            op = rng.choice(["new", "new", "edit", "move", "delete", "break"])
            rel = rng.choice(existing) if existing else "x.md"
            if op == "new" or not existing:
                newsroom.write(f"{rng.choice(folders)}n{step}.md", story(rng.choice(titles)))
            elif op == "edit":
                newsroom.write(rel, story(rng.choice(titles), body=f"edit {step}"))
            elif op == "move":
                to = content / f"{rng.choice(folders)}m{step}.md"
                (content / rel).rename(to)
            elif op == "delete":
                (content / rel).unlink()
            else:
                newsroom.write(rel, "---\ntitle: [broken\n---\n")
            current = fingerprint(content)
            assert current is not None and listing is not None
            same = {d: v for d, v in listing.items() if current.get(d) == v}
            hint = FolderHint(same, frozenset(current), no_orphans=clean)
            report = collect(config, pg, now=t, hints={name: hint})
            reference = collect(config, full, now=t)
            assert _stored(pg) == _stored(full), (step, op, rel)
            assert report.counts == reference.counts, (step, op, rel)
    finally:
        pg.close()
        full.close()
    assert any(got is not None for url, got in scopes if url.startswith("postgresql"))


def test_a_folders_rows_are_its_own_whatever_its_name_holds(store_url: str) -> None:
    """LIKE's wildcards and the escape character in a folder's name are text: "a_b/" is
    not "axb/", "a%b/" not "a%%b/"; a subfolder's files and a sibling's are not its."""
    store = Store(store_url)
    paths = [
        "a_b/x.md", "axb/x.md", "a%b/y.md", "a%%b/y.md", "a!b/z.md", "a!!b/z.md",
        "a_b/sub/x.md", "a_b2/x.md", "top.md",
    ]  # fmt: skip
    with store.begin() as conn:
        conn.execute(
            sa.insert(s.source_files),
            [{"source": "src", "path": p, "size": 1, "mtime_ns": 0} for p in paths],
        )
    with store.read() as conn:
        for folder in ("a_b/", "a%b/", "a!b/", "", "a_b/sub/"):
            got = sorted(folder_stats(conn, "src", [folder]))
            assert got == sorted(p for p in paths if folder_of(p) == folder), folder
            assert folder_counts(conn, "src", [folder]) == {folder: len(got)}
    store.close()
