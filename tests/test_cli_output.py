"""What the commands print, where operators read it: a pipe or a log (cron, systemd, CI,
``make run | tee``). Nothing is broken in the middle of a word: a source name stays
whole in the collect table and an error message stays one line.

Real processes: ``python -m feedpub`` with its stdout a pipe; click's CliRunner (stdout
not a terminal) for the rest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from click.testing import CliRunner

from feedpub.cli import main
from tests.conftest import BASE_CONFIG, Newsroom

LONG_NAME = "folder:overnight-desk/colombo-bureau/regional-correspondents/wire-copy-and-pool"


def story(title: str, when: datetime) -> str:
    return f"---\ntitle: {title}\ndate: {when:%Y-%m-%dT%H:%M:%SZ}\nbeat: world\n---\n{title}.\n"


def feedpub(newsroom: Newsroom, *args: str) -> list[str]:
    return [sys.executable, "-m", "feedpub", "--config", str(newsroom.config_path), *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    return {**env, "PYTHONWARNINGS": "ignore", **extra}


def test_collect_table_in_a_pipe_keeps_source_names_whole(newsroom: Newsroom) -> None:
    """``folder:content`` came out as ``folder:conten`` / ``t`` in ``make run`` and logs."""
    (newsroom.root / "desk").mkdir()
    newsroom.set_config(f'[[sources]]\ntype = "folder"\npath = "desk"\nname = "{LONG_NAME}"\n')
    newsroom.write("a.md", story("Harbour lights", datetime(2026, 1, 10, 9, tzinfo=UTC)))
    r = subprocess.run(
        feedpub(newsroom, "collect"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="80"),  # an 80-column hint does not make a pipe wrap
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("│ folder:content " in line for line in lines), r.stdout
    assert any(f"│ {LONG_NAME} " in line for line in lines), r.stdout
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    # header, two sources and the total: one line each, all as wide as the table
    assert len(table) == 3 + 2 + 1 + 1, r.stdout
    assert len({len(line) for line in table}) == 1, r.stdout


def test_error_message_is_one_line_in_a_pipe(newsroom: Newsroom) -> None:
    newsroom.config_path.write_text(
        BASE_CONFIG.replace("[output]", "[output]\nitems_per_feed_in_the_archive_pages = 9"),
        encoding="utf-8",
    )
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "build"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error:") and len(r.stderr) > 80, r.stderr
    assert r.stderr.count("\n") == 1 and "items_per_feed_in_the_archive_pages" in r.stderr
