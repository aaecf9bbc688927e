"""``feedpub build [--force]`` and ``feedpub publish`` (collect + build) from the command line."""

from __future__ import annotations

from click.testing import CliRunner

from feedpub.cli import main
from tests.conftest import Newsroom

STORY = """\
---
title: Story {n}
author: Arjun Mehta
date: 2026-11-2{n} 09:00
beat: technology
---

Body {n}.
"""


def run(newsroom: Newsroom, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *args])
    return r.exit_code, r.stdout, r.stderr


def test_publish_then_build(newsroom: Newsroom) -> None:
    newsroom.write("a.md", STORY.format(n=1))
    code, out, _ = run(newsroom, "publish")
    assert code == 0
    assert "changed https://news.example/beats/technology/{rss.xml,atom.xml,feed.json}" in out
    assert (newsroom.root / "feeds" / "atom.xml").is_file()
    code, out, _ = run(newsroom, "build")
    assert code == 0 and "nothing changed" in out
    store = newsroom.store()
    last = store.last_run("build")
    store.close()
    assert last is not None and last["ok"] and last["summary"]["skipped"] is True
    code, out, _ = run(newsroom, "build", "--force", "-v")
    # Nothing changed: --force re-renders but touches no file and reports no feed.
    assert code == 0 and "0 file(s) written" in out and "wrote " not in out
    assert "changed " not in out
    newsroom.write("b.md", STORY.format(n=2))
    code, out, _ = run(newsroom, "publish")
    assert code == 0
    assert "changed https://news.example/beats/world/" not in out  # untouched beat
    assert "changed https://news.example/{rss.xml,atom.xml,feed.json}" in out


def test_publish_exits_1_when_input_rejected_but_publishes_the_rest(newsroom: Newsroom) -> None:
    newsroom.write("good.md", STORY.format(n=1))
    newsroom.write("bad.md", "---\ntitle: [unclosed\n---\nbody\n")
    code, _out, err = run(newsroom, "publish")
    assert code == 1
    assert "bad.md" in err
    assert "Story 1" in (newsroom.root / "feeds" / "rss.xml").read_text()


def test_build_with_bad_config_exits_2(newsroom: Newsroom) -> None:
    newsroom.config_path.write_text("[site]\ntitle = 'x'\n", encoding="utf-8")
    code, _, err = run(newsroom, "build")
    assert code == 2 and "base_url" in err
