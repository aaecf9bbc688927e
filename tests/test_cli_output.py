"""What the commands print, where operators read it: a pipe or a log (cron, systemd, CI,
``make run | tee``) and a terminal. Nothing is broken in the middle of a word: a source
name stays whole in the collect table, an error message stays one line, and
``digest send`` prints ``archive: PATH`` on one line even on an 80-column terminal.

Real processes: ``python -m feedpub`` with its stdout a pipe, or on a pseudo-terminal
80 columns wide; click's CliRunner (stdout not a terminal) for an error message.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from feedpub.cli import main
from tests.conftest import BASE_CONFIG, Newsroom, real_now

LONG_NAME = "folder:overnight-desk/colombo-bureau/regional-correspondents/wire-copy-and-pool"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def story(title: str, when: datetime) -> str:
    return f"---\ntitle: {title}\ndate: {when:%Y-%m-%dT%H:%M:%SZ}\nbeat: world\n---\n{title}.\n"


def feedpub(newsroom: Newsroom, *args: str) -> list[str]:
    return [sys.executable, "-m", "feedpub", "--config", str(newsroom.config_path), *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    return {**env, "PYTHONWARNINGS": "ignore", **extra}


def run_on_terminal(cmd: list[str], *, columns: int = 80) -> tuple[int, str]:
    """Run ``cmd`` with stdin, stdout and stderr on a new pseudo-terminal ``columns``
    wide; return its exit status and everything it wrote (colours stripped)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = child_env(TERM="xterm", NO_COLOR="1")
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no output for 60 s from {cmd}"
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, ANSI.sub("", out.decode()).replace("\r\n", "\n")


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


def prepare_edition(newsroom: Newsroom) -> None:
    """One article from an hour ago, collected, and one subscriber: the next edition of
    ``daily`` has something to send. The output folder is deep, so that the archive
    path is wider than an 80-column terminal. Subprocesses all along, dated by the real
    clock (``make test-future`` moves only this process's)."""
    deep = "feeds/a-rather-deep-folder-for-the-published-feeds-and-archives"
    newsroom.config_path.write_text(
        BASE_CONFIG.replace('dir = "feeds"', f'dir = "{deep}"'), encoding="utf-8"
    )
    newsroom.write("a.md", story("Ferry timetable", real_now() - timedelta(hours=1)))
    for args in (
        ["collect"],
        ["subscribers", "add", "reader@example.com", "--newsletter", "daily"],
    ):
        r = subprocess.run(
            feedpub(newsroom, *args),
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr


def archive_page(newsroom: Newsroom) -> str:
    (page,) = newsroom.root.glob("feeds/*/newsletters/daily/manual-*.html")
    return str(page)


def test_digest_send_prints_the_archive_path_on_the_archive_line(newsroom: Newsroom) -> None:
    """On an 80-column terminal rich used to print ``archive:`` alone, then the path."""
    prepare_edition(newsroom)
    code, out = run_on_terminal(
        feedpub(newsroom, "digest", "send", "daily", "--extra", "--no-progress")
    )
    assert code == 0, out
    page = archive_page(newsroom)
    assert len(f"archive: {page}") > 80
    assert f"archive: {page}\n" in out, out
    # the report line is one line too (the terminal folds it, rich does not break it)
    (report,) = [line for line in out.splitlines() if line.startswith("daily No. 1")]
    assert report.endswith("still to send 0"), out


def test_digest_send_archive_line_in_a_pipe(newsroom: Newsroom) -> None:
    prepare_edition(newsroom)
    r = subprocess.run(
        feedpub(newsroom, "digest", "send", "daily", "--extra"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="80"),
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"archive: {archive_page(newsroom)}\n" in r.stdout, r.stdout


def test_emoji_codes_in_names_are_printed_as_written(newsroom: Newsroom) -> None:
    """A source named ``wire :fire: desk`` and a file ``:smile:.md``: in a pipe and on a
    terminal, the names as written, not pictures in place of the codes."""
    (newsroom.root / "desk").mkdir()
    newsroom.set_config('[[sources]]\ntype = "folder"\npath = "desk"\nname = "wire :fire: desk"\n')
    newsroom.write(":smile:.md", "---\ntitle: [broken\n---\n")
    piped = subprocess.run(
        feedpub(newsroom, "collect"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    code, on_terminal = run_on_terminal(feedpub(newsroom, "collect"))
    assert piped.returncode == code == 1, piped.stdout + piped.stderr
    assert "wire :fire: desk" in piped.stdout and ":smile:.md" in piped.stderr
    for out in (piped.stdout + piped.stderr, on_terminal):  # a terminal may wrap the name
        assert ":fire:" in out and ":smile:.md" in out, out
        assert (
            "\N{FIRE}" not in out and "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}" not in out
        )
