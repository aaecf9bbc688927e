"""``feedpub publish`` with nothing to do since the last clean publish is proven so without
the collect (feedpub.quiet), and is then exactly what the full publish would have been:
same report, same exit status, same feeds, same runs recorded. Anything that changed
(a file written, touched, added, renamed or deleted, a scheduled article come due, the
configuration, a feed file gone, a rejected file) takes the full path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from click.testing import CliRunner
from hypothesis import event, given, settings
from hypothesis import strategies as st

from feedpub import collect as collect_module
from feedpub import quiet, schema
from feedpub.cli import main
from feedpub.config import load_config
from feedpub.quiet_db import Target, target_of
from feedpub.sources import walk as walk_module
from tests.conftest import BASE_CONFIG, Newsroom

NOW = datetime(2031, 3, 2, 8, tzinfo=UTC)


def story(title: str, date: str = "2031-03-01T09:00:00Z", body: str = "") -> str:
    return f"---\ntitle: {title}\ndate: {date}\nbeat: world\n---\n{title}. {body}\n"


class Pair:
    """The same newsroom twice: ``quiet`` publishes as users do; ``full`` always takes
    the full path (``--log-level`` turns the quiet path off). ``urls``: their stores
    (default: a SQLite file in each)."""

    def __init__(self, tmp: Path, urls: tuple[str, str] | None = None) -> None:
        self.quiet = tmp / "quiet"
        self.full = tmp / "full"
        for i, root in enumerate(self.both()):
            (root / "content").mkdir(parents=True)
            config = BASE_CONFIG
            if urls is not None:
                config = config.replace('url = "sqlite:///feedpub.db"', f'url = "{urls[i]}"')
            (root / "config.toml").write_text(config, encoding="utf-8")

    def both(self) -> Iterator[Path]:
        yield self.quiet
        yield self.full

    def write(self, rel: str, text: str) -> None:
        for root in self.both():
            p = root / "content" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")

    def publish(self, now: datetime) -> tuple[int, str, str]:
        out = []
        with time_machine.travel(now, tick=False):
            for root, extra in ((self.quiet, []), (self.full, ["--log-level", "WARNING"])):
                r = CliRunner().invoke(
                    main, ["--config", str(root / "config.toml"), *extra, "publish"]
                )
                assert r.exception is None or isinstance(r.exception, SystemExit), r.output
                out.append((r.exit_code, r.stdout, r.stderr))
        assert out[0] == out[1]
        assert feeds(self.quiet) == feeds(self.full)
        assert runs(self.quiet)[-2:] == runs(self.full)[-2:]
        assert stored(self.quiet) == stored(self.full)
        assert_record_counts_the_rows(self.quiet)
        return out[0]


def assert_record_counts_the_rows(root: Path) -> None:
    """What a clean hint's ``listed_files`` is taken for (feedpub.collect_scope): a kept quiet
    record of a source with nothing rejected counts exactly the store's stats rows of it."""
    meta, files = schema.meta, schema.source_files
    raw = _rows(root, sa.select(meta.c.value).where(meta.c.key == quiet.QUIET_KEY))
    if not raw:
        return
    rec = json.loads(raw[0][0])
    for name, _root, recorded in rec["sources"]:
        if any(src == name for src, *_ in rec.get("rejected", [])):
            continue
        count = sa.select(sa.func.count()).where(files.c.source == name)
        assert _rows(root, count) == [(walk_module.files_in(recorded),)], name


def feeds(root: Path) -> dict[str, bytes]:
    out = root / "feeds"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _rows(root: Path, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """Rows of the newsroom's store (SQLite or PostgreSQL), as the schema's types read them."""
    engine = sa.create_engine(load_config(root / "config.toml").store_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


def runs(root: Path) -> list[tuple[object, ...]]:
    r = schema.runs
    return _rows(root, sa.select(r.c.kind, r.c.started, r.c.ok, r.c.summary).order_by(r.c.id))


def stored(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The articles and the recorded files (paths and sizes: mtimes differ between the
    two newsrooms) as the store holds them."""
    a, f = schema.articles, schema.source_files
    cols = (a.c.id, a.c.source_key, a.c.url, a.c.status, a.c.content_hash, a.c.published)
    articles = _rows(root, sa.select(*cols, a.c.updated).order_by(a.c.id))
    files = _rows(root, sa.select(f.c.path, f.c.size).order_by(f.c.path))
    return articles, files


def retracted(root: Path) -> list[str]:
    a = schema.articles
    q = sa.select(a.c.source_key).where(a.c.status == "retracted").order_by(a.c.source_key)
    return [r[0] for r in _rows(root, q)]


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    """Both newsrooms on SQLite files, then both on PostgreSQL databases of their own."""
    monkeypatch.setenv("FEEDPUB_TEST_SECRET", "test-secret-key")
    if request.param == "sqlite":
        return Pair(tmp_path)
    make = request.getfixturevalue("pg_databases")
    return Pair(tmp_path, (make(), make()))


@pytest.fixture
def no_collect(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Calls of the full collect, by newsroom: the quiet path makes none."""
    calls: list[str] = []
    real = collect_module.collect

    def counting(config, store, **kw):  # type: ignore[no-untyped-def]
        calls.append(config.root.name)
        return real(config, store, **kw)

    monkeypatch.setattr(collect_module, "collect", counting)
    yield calls


def test_every_change_takes_the_full_path_and_nothing_else_does(
    pair: Pair, no_collect: list[str]
) -> None:
    pair.write("a.md", story("Harbour"))
    pair.write("d/b.md", story("Ferry"))
    pair.write("later.md", story("Tomorrow", date="2031-03-02T09:30:00Z"))  # scheduled
    pair.write("draft.md", "---\ntitle: Draft\ndraft: true\ndate: 2031-03-01\n---\nD\n")
    t = NOW

    def step(minutes: int, *, expect_quiet: bool) -> tuple[int, str, str]:
        nonlocal t
        t += timedelta(minutes=minutes)
        no_collect.clear()
        code, out, err = pair.publish(t)
        assert ("quiet" not in no_collect) == expect_quiet, (no_collect, out)
        assert "full" in no_collect
        return code, out, err

    code, out, _ = step(0, expect_quiet=False)  # the first publish
    assert code == 0 and "feeds: " in out
    code, out, _ = step(1, expect_quiet=True)
    assert code == 0 and "feeds: nothing changed" in out and "│ 4 " not in out
    step(1, expect_quiet=True)

    pair.write("a.md", story("Harbour", body="An edit."))  # written in place, new size
    code, out, _ = step(1, expect_quiet=False)
    assert "changed" in out
    step(1, expect_quiet=True)

    for root in pair.both():  # same bytes, new mtime
        p = root / "content" / "d" / "b.md"
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    for root in pair.both():  # an editor's swap file: hidden, but the folder changed
        (root / "content" / "d" / ".b.md.swp").write_bytes(b"swap")
    step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    for root in pair.both():
        (root / "content" / "d" / "b.md").rename(root / "content" / "d" / "c.md")
    step(1, expect_quiet=False)
    pair.write("new/x.md", story("Lighthouse"))
    step(1, expect_quiet=False)
    for root in pair.both():
        (root / "content" / "a.md").unlink()
    code, out, _ = step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    code, out, _ = step(95, expect_quiet=False)  # 09:30 passed: the scheduled story is due
    step(1, expect_quiet=True)

    for root in pair.both():  # the configuration changed
        cfg = root / "config.toml"
        cfg.write_text(cfg.read_text().replace("Test Times", "Test Times Weekly"))
    step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    for root in pair.both():  # a feed file gone (a cleaned output folder)
        (root / "feeds" / "rss.xml").unlink()
    step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    pair.write("bad.md", "---\ntitle: [broken\n---\n")
    code, out, err = step(1, expect_quiet=False)
    assert code == 1 and "bad.md:2" in err
    # Rejected again, named again, and the same exit status, without the collect.
    assert step(1, expect_quiet=True) == (code, out, err)
    assert runs(pair.quiet)[-2][2] == 0  # the collect is recorded as not ok, as it was
    pair.write("d/worse.md", "---\ntitle: ok\ndate: not a date\n---\n")
    code, out, err = step(1, expect_quiet=False)
    assert "bad.md:2" in err and "d/worse.md:3" in err
    assert step(1, expect_quiet=True) == (code, out, err)
    for root in pair.both():
        (root / "content" / "d" / "worse.md").unlink()
    pair.write("bad.md", story("Mended"))
    code, out, err = step(1, expect_quiet=False)
    assert code == 0 and "rejected" not in err
    assert step(1, expect_quiet=True)[0] == 0
    # Rejected by the plan, not the parser (same URL as another file): its stats are
    # recorded, so the next full run skips it as unchanged; no quiet record vouches for it.
    pair.write("twin1.md", story("Twins"))
    pair.write("twin2.md", story("Twins"))
    code, out, err = step(1, expect_quiet=False)
    assert code == 1 and "same URL" in err
    code, out, err = step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    with time_machine.travel(t, tick=False):  # a rebuild by hand replaces the build record
        for root in pair.both():
            r = CliRunner().invoke(
                main, ["--config", str(root / "config.toml"), "build", "--force"]
            )
            assert r.exit_code == 0, r.output
    step(1, expect_quiet=False)
    step(1, expect_quiet=True)

    # A collect of its own (the daemon, `feedpub collect`) ends what the record vouches for:
    # here it rejects a file and forgets its stats; the file is then deleted, and only
    # the full check finds the article left without a file, and retracts it.
    pair.write("new/x.md", "---\ntitle: [broken\n---\n")
    with time_machine.travel(t + timedelta(seconds=30), tick=False):
        for root in pair.both():
            r = CliRunner().invoke(main, ["--config", str(root / "config.toml"), "collect"])
            assert r.exit_code == 1, r.output
    for root in pair.both():
        (root / "content" / "new" / "x.md").unlink()
    step(1, expect_quiet=False)
    assert retracted(pair.quiet) == retracted(pair.full) == ["a.md", "new/x.md"]
    step(1, expect_quiet=True)


def test_a_change_deep_in_the_tree_walks_only_the_folders_that_changed(
    pair: Pair, no_collect: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a clean publish, a publish with some folders changed lists only those (the
    others' files are taken as recorded) and ends exactly as the full publish does."""
    for rel in ("top.md", "x/f.md", "x/y/g.md", "x/y/z/e.md", "p/q.md", "p/r/s.md"):
        pair.write(rel, story(rel.replace("/", " ").removesuffix(".md").title()))
    t = NOW
    pair.publish(t)
    listed: list[str] = []
    real_scandir = os.scandir

    content = os.path.realpath(pair.quiet / "content")

    def scandir(path: str | int) -> object:  # a folder's path, or its open descriptor
        where = os.readlink(f"/proc/self/fd/{path}") if isinstance(path, int) else str(path)
        if os.path.realpath(where).startswith(content):
            listed.append(os.path.relpath(os.path.realpath(where), content))
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)

    def step(*, expect_quiet: bool) -> None:
        nonlocal t
        t += timedelta(minutes=1)
        listed.clear()
        no_collect.clear()
        pair.publish(t)
        assert ("quiet" not in no_collect) == expect_quiet

    step(expect_quiet=True)
    assert sorted(listed) == [".", "p", "p/r", "x", "x/y", "x/y/z"]  # the check, once each
    # The check lists every folder once; the collect then lists only x/y/z.
    pair.write("x/y/z/e.md", story("E", body="Edited deep down."))
    step(expect_quiet=False)
    assert listed.count("x/y/z") == 2 and listed.count("x/y") == 1 and listed.count(".") == 1
    step(expect_quiet=True)

    pair.write("x/y/new/n.md", story("New Folder"))  # x/y changed; x/y/new is new
    step(expect_quiet=False)
    assert listed.count("x/y") == 2 and listed.count("x/y/new") == 2
    assert listed.count("x/y/z") == 1 and listed.count("p/r") == 1
    step(expect_quiet=True)

    for root in pair.both():  # a whole folder removed: its articles are retracted
        shutil.rmtree(root / "content" / "p")
    step(expect_quiet=False)
    assert retracted(pair.quiet) == retracted(pair.full) == ["p/q.md", "p/r/s.md"]
    step(expect_quiet=True)
    _arts, files = stored(pair.quiet)
    assert [f for f, _ in files] == ["top.md", "x/f.md", "x/y/g.md", "x/y/new/n.md", "x/y/z/e.md"]
    assert b"Edited deep down" in feeds(pair.quiet)["rss.xml"]


def test_a_walk_does_not_list_the_folders_it_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "content"
    for rel in ("a.md", "x/c.md", "x/y/d.md", "x/y/z/e.md", "x/y/z/f.md", "w/g.md"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    full = walk_module.fingerprint(root)
    assert full is not None
    known = {rel: (size, mtime) for rel, _, size, mtime in walk_module.walk(root, [])}
    (root / "x" / "y" / "z" / "f.md").write_text("longer than before")
    now = walk_module.fingerprint(root)
    assert now is not None
    same = {d: v for d, v in full.items() if now.get(d) == v}
    assert sorted(same) == ["", "w/", "x/", "x/y/"]
    hint = walk_module.FolderHint(same, frozenset(now))
    trusted, walked = walk_module.trusted_folders(hint, known)
    assert sorted(trusted) == ["", "w/", "x/", "x/y/"] and sorted(walked) == ["x/y/z/"]
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        listed.append(os.path.relpath(path, root))
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    tally = walk_module.Tally()
    got = [rel for rel, *_ in walk_module.walk(root, [], tally, trusted=trusted, dirs=hint.dirs)]
    assert got == ["x/y/z/e.md", "x/y/z/f.md"] and listed == ["x/y/z"]
    assert tally.fingerprint() == now
    # A trusted folder whose recorded count disagrees with the known files is walked.
    del known["w/g.md"]
    trusted, walked = walk_module.trusted_folders(hint, known)
    assert "w/" not in trusted


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_quiet_publish_loads_neither_the_database_layer_nor_the_config_models(
    newsroom: Newsroom, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("pg_url")
        newsroom.set_config(base=BASE_CONFIG.replace("sqlite:///feedpub.db", url))
    newsroom.write("a.md", story("Harbour"))
    prog = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('HEAVY', sorted({m.split('.')[0] for m in sys.modules}"
        " & {'sqlalchemy', 'pydantic', 'jinja2', 'nh3', 'yaml'}), file=sys.stderr))\n"
        "from feedpub.cli import main\n"
        "main()\n"
    )
    cmd = [sys.executable, "-c", prog, "--config", str(newsroom.config_path), "publish"]
    env = {**os.environ, "FEEDPUB_TEST_SECRET": "test-secret-key"}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "HEAVY ['jinja2', 'nh3', 'pydantic', 'sqlalchemy', 'yaml']" in first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "HEAVY []" in second.stderr
    assert "feeds: nothing changed" in second.stdout
    assert "│ 1 " in second.stdout or "1 │" in second.stdout  # one file, unchanged


def test_only_a_store_url_the_check_opens_itself_takes_the_quiet_path(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    root = tmp_path.resolve()
    for url, target in (
        ("postgresql+psycopg://u@127.0.0.1/x", Target(dsn="postgresql://u@127.0.0.1/x")),
        ("postgresql://u@db:5433/x", Target(dsn="postgresql://u@db:5433/x")),
        ("postgresql+psycopg2://u@127.0.0.1/x", None),  # another driver
        ("postgresql+psycopg://u@127.0.0.1/x?sslmode=require", None),  # options
        ("postgresql+psycopg://u:p%40ss@127.0.0.1/x", None),  # an escape
        ("sqlite:///:memory:", None),
        ("sqlite:///store.db?timeout=5", None),
        ("sqlite:///store.db", Target(sqlite=root / "store.db")),
    ):
        cfg.write_text(BASE_CONFIG.replace('url = "sqlite:///feedpub.db"', f'url = "{url}"'))
        probe = quiet.probe(cfg)
        assert (probe.target if probe else None) == target, url
    cfg.write_text("not [valid toml")
    assert quiet.probe(cfg) is None
    assert quiet.probe(tmp_path / "missing.toml") is None


def test_a_store_the_check_cannot_open_takes_the_full_path(tmp_path: Path) -> None:
    """No server on the port, or no such SQLite file: "don't know", never an error."""
    for target in (
        Target(dsn="postgresql://postgres@127.0.0.1:1/nowhere"),
        Target(sqlite=tmp_path / "missing.db"),
    ):
        probe = quiet.Probe("key", target)
        assert quiet.check(probe, NOW, lambda: NOW) is None, target


def test_the_quiet_check_names_the_same_keys_and_files_as_the_store_and_the_build() -> None:
    from feedpub.config import StoreConfig
    from feedpub.feeds import build, queries

    assert quiet.FEEDS_STATE_KEY == queries.STATE_KEY
    assert quiet.FEEDS_GENERATION_KEY == queries.GENERATION_KEY
    assert quiet.SITE_FILES == build.SITE_FILES
    assert StoreConfig().url == quiet.DEFAULT_STORE_URL


@pytest.mark.parametrize("by_descriptor", [True, False], ids=["fstatat", "stat-by-path"])
def test_the_fingerprint_sums_exactly_what_the_folder_walk_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_descriptor: bool
) -> None:
    """Whether each file is stat-ed by name in its open folder or by its path."""
    monkeypatch.setattr(walk_module, "_BY_FD", by_descriptor)
    root = tmp_path / "content"
    for rel in (
        "a.md",
        "B.MARKDOWN",
        "x/c.html",
        "x/y/d.txt",
        "x/y/z/e.htm",
        "notes.pdf",
        ".hidden.md",
        "_drafts/f.md",
        "x/.git/g.md",
    ):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel * 3)
    os.symlink(root / "a.md", root / "link.md")
    os.symlink(root / "x", root / "linked-dir")  # not followed
    os.symlink(root / "gone.md", root / "dangling.md")  # not a file
    tally = walk_module.Tally()
    listed = sorted(rel for rel, *_ in walk_module.walk(root, [], tally))
    assert listed == ["B.MARKDOWN", "a.md", "link.md", "x/c.html", "x/y/d.txt", "x/y/z/e.htm"]
    fp = walk_module.fingerprint(root)
    assert fp == tally.fingerprint() is not None
    assert walk_module.files_in(fp) == 6 and sorted(fp) == ["", "x/", "x/y/", "x/y/z/"]
    for processes in (2, 3, 8):  # forked children list and stat a share each: the same sums
        assert walk_module.fingerprint(root, processes, expected=6, min_share=1) == fp
    for per in (1, 2, 100):  # listed here down to this many subtrees per process, or all
        walk_module.SUBTREES_PER_PROCESS = per
        try:
            assert walk_module.fingerprint(root, 2, expected=6, min_share=1) == fp
        finally:
            walk_module.SUBTREES_PER_PROCESS = 4

    before = walk_module.fingerprint(root)
    (root / "x" / "y" / "d.txt").write_text("x/y/d.txtx/y/d.txtx/y/d.tx!")  # same size
    st = (root / "x" / "y" / "d.txt").stat()
    os.utime(root / "x" / "y" / "d.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert walk_module.fingerprint(root) != before
    assert walk_module.fingerprint(tmp_path / "nowhere") is None
    # a file listed, then deleted before a forked child stats it: no fingerprint
    listing = [("", 0, [str(root / "a.md"), str(root / "deleted-meanwhile.md")])]
    assert walk_module._forked(listing, [], 2) is None
    assert walk_module._forked([("", 7, [str(root / "a.md")] * 2)], [], 2) == {
        "": [2, 2 * (root / "a.md").stat().st_size, 2 * (root / "a.md").stat().st_mtime_ns, 7]
    }
    gone = [(str(root / "x" / "no-such-folder"), "x/no-such-folder/")]
    assert walk_module._forked([], gone, 2) is None  # a subtree that cannot be listed
    os.symlink(root / "loop.md", root / "loop.md")  # ELOOP: the parser names it
    assert walk_module.fingerprint(root) is None
    assert walk_module.fingerprint(root, 3, expected=6, min_share=1) is None
    shutil.rmtree(root)


def test_children_walk_the_whole_folder_while_this_process_does_other_work(
    tmp_path: Path,
) -> None:
    """``meanwhile`` runs once, here, and the sums are those of a walk without it; one
    core stays with this process (``processes`` - 1 children walk, at least one); it
    raising still reaps every child."""
    root = tmp_path / "content"
    for rel in ("a.md", "x/b.md", "x/y/c.md", "x/y/z/d.md", "w/e.md", "w/f.md"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel * 5)
    fp = walk_module.fingerprint(root)
    assert fp is not None
    for processes, min_share, walkers in ((1, 20_000, 1), (2, 1, 1), (3, 1, 2), (4, 2, 3)):
        ran: list[int] = []
        forked: list[int] = []
        before = _children()

        def meanwhile(
            ran: list[int] = ran, forked: list[int] = forked, before: set[str] = before
        ) -> None:
            ran.append(os.getpid())
            forked.append(len(_children() - before))  # exited ones wait as zombies

        got = walk_module.fingerprint(
            root, processes, expected=6, min_share=min_share, meanwhile=meanwhile
        )
        assert got == fp and ran == [os.getpid()], processes
        assert forked == [walkers], processes

    def boom() -> None:
        raise RuntimeError("import failed")

    before = _children()
    with pytest.raises(RuntimeError):
        walk_module.fingerprint(root, 2, expected=6, min_share=1, meanwhile=boom)
    assert _children() <= before  # no child left behind, not even a zombie


def _children() -> set[str]:
    """This process's children (zombies too), as Linux lists them."""
    out: set[str] = set()
    for task in Path("/proc/self/task").iterdir():
        out.update((task / "children").read_text().split())
    return out


def test_the_full_paths_imports_overlap_the_walk_only_when_a_folder_is_known_changed(
    newsroom: Newsroom,
) -> None:
    """A file added (its directory's mtime moves) or removed: ``prepare`` runs during the
    walk. An edit in place (no directory moves) or nothing changed: it does not, and the
    check answers as it would without it."""
    newsroom.write("a.md", story("Harbour"))
    newsroom.write("d/b.md", story("Ferry"))
    runner = CliRunner()
    env = {"FEEDPUB_TEST_SECRET": "test-secret-key"}

    def publish() -> None:
        with time_machine.travel(NOW, tick=False):
            r = runner.invoke(main, ["--config", str(newsroom.config_path), "publish"], env=env)
        assert r.exit_code == 0, r.output

    def check() -> tuple[object, int]:
        calls: list[int] = []
        probe = quiet.probe(newsroom.config_path)
        assert probe is not None
        got = quiet.check(probe, NOW, lambda: NOW, processes=2, prepare=lambda: calls.append(1))
        return got, len(calls)

    publish()
    got, calls = check()
    assert isinstance(got, quiet.QuietRun) and calls == 0  # nothing changed

    newsroom.write("d/new.md", story("Lighthouse"))  # d/ moves
    got, calls = check()
    assert isinstance(got, quiet.Hints) and calls == 1
    assert sorted(next(iter(got.folders.values())).unchanged) == [""]  # only d/ changed
    publish()

    p = newsroom.content / "a.md"
    st = p.stat()
    p.write_text(story("Harbour", body="An edit in place."))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    os.utime(
        newsroom.content,
        ns=(newsroom.content.stat().st_atime_ns, newsroom.content.stat().st_mtime_ns),
    )
    got, calls = check()
    assert isinstance(got, quiet.Hints) and calls == 0  # found by the files' stats alone
    publish()

    (newsroom.content / "d" / "b.md").unlink()
    got, calls = check()
    assert isinstance(got, quiet.Hints) and calls == 1

    def failing() -> None:
        raise ImportError("no such module")

    probe = quiet.probe(newsroom.config_path)
    assert probe is not None
    assert isinstance(
        quiet.check(probe, NOW, lambda: NOW, processes=2, prepare=failing), quiet.Hints
    )


def test_a_rejection_that_depends_on_more_than_the_bytes_is_never_repeated_quietly(
    tmp_path: Path,
) -> None:
    """Permissions (a chmod changes no mtime), memory, or a pasted .txt file's dates read
    relative to the run: the next publish reads the file again."""
    from feedpub.collect_report import CollectReport, SourceReport
    from feedpub.errors import ContentError
    from feedpub.sources.folder import read_text

    try:
        read_text(tmp_path / "gone.md", "gone.md")
    except ContentError as e:
        unreadable = e
    else:
        pytest.fail("a missing file was read")

    def report(*errors: ContentError) -> CollectReport:
        r = CollectReport(now=NOW)
        counts = {"rejected": len(errors)}
        r.sources.append(SourceReport("folder:content", "ok", None, counts, []))
        r.rejected = list(errors)
        return r

    typo = ContentError("a.md", "front matter is not valid YAML", line=2)
    assert quiet._repeatable(report(typo)) == [
        ("folder:content", "a.md", "front matter is not valid YAML", 2)
    ]
    assert quiet._repeatable(report(typo, unreadable)) is None
    assert quiet._repeatable(report(ContentError("b.txt", "no date"))) is None
    assert quiet._repeatable(report(ContentError("c.md", "too big to read in memory"))) is None


def test_a_published_file_broken_then_deleted_is_retracted(
    pair: Pair, no_collect: list[str]
) -> None:
    """A published file turned unreadable keeps its article (its last good version) and
    has no recorded stats; the quiet record names it. Deleting it afterwards must retract
    the article, on the hinted path as on the full one."""
    pair.write("a.md", story("Harbour"))
    pair.write("b/x.md", story("Ferry"))
    t = NOW
    pair.publish(t)
    pair.write("a.md", "---\ntitle: [broken\n---\n")
    code, _out, err = pair.publish(t + timedelta(minutes=1))
    assert code == 1 and "a.md:2" in err
    assert retracted(pair.quiet) == []  # its last good version stays published
    for root in pair.both():
        (root / "content" / "a.md").unlink()
    no_collect.clear()
    pair.publish(t + timedelta(minutes=2))
    assert "quiet" in no_collect  # the hinted collect ran, not the quiet run
    assert retracted(pair.quiet) == retracted(pair.full) == ["a.md"]


# Plain names half the time (URLs the check takes), anything URL-like the other half.
_URL_PARTS = st.one_of(
    st.text(alphabet="az09._~-", min_size=1, max_size=6),
    st.text(alphabet="az09._-:@/[]#?%+ ~!$&'()*,;=", max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"]),
    user=_URL_PARTS,
    password=st.one_of(st.none(), _URL_PARTS),
    host=_URL_PARTS,
    port=st.one_of(st.none(), st.integers(0, 70000).map(str), _URL_PARTS),
    db=_URL_PARTS,
)
def test_a_postgresql_url_the_check_takes_means_what_it_means_to_sqlalchemy(
    scheme: str, user: str, password: str | None, host: str, port: str | None, db: str
) -> None:
    """The quiet check hands libpq the URL SQLAlchemy would read: both must agree on the
    user, password, host, port and database of any URL it does not leave to the full
    path (and it never raises on any)."""
    from psycopg.conninfo import conninfo_to_dict

    auth = user + (f":{password}" if password is not None else "")
    url = f"{scheme}{auth}@{host}" + (f":{port}" if port is not None else "") + f"/{db}"
    target = target_of(url, Path("/"))
    event("taken" if target is not None else "left to the full path")
    if target is None:
        return
    assert target.dsn is not None and target.sqlite is None
    theirs = sa.engine.make_url(url)
    ours = conninfo_to_dict(target.dsn)
    assert theirs.get_backend_name() == "postgresql" and theirs.get_driver_name() == "psycopg"
    assert (ours.get("user"), ours.get("password")) == (theirs.username, theirs.password)
    assert (ours.get("host"), ours.get("port")) == (
        theirs.host,
        str(theirs.port) if theirs.port else None,
    )
    assert ours.get("dbname") == theirs.database
