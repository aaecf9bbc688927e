"""How the ``feedpub`` program ends: with its command's exit status and everything it
printed and stored, without the interpreter's last walk over what is left in memory.

The console script and ``python -m feedpub`` both run ``feedpub.cli.run``, which freezes
the objects left (``gc.freeze``) once the command is over; ``atexit`` handlers still run
after it. Real processes, real SQLite: a second process reads what the first stored.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from datetime import timedelta

from tests.conftest import Newsroom, real_now

# ``python -m feedpub`` (runpy, as the interpreter runs it), with one more atexit handler
# (registered first, so it runs after logging's): was everything left frozen at exit?
PROBE = (
    "import atexit, gc, runpy, sys\n"
    "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0,"
    " file=sys.stderr))\n"
    "sys.argv = ['feedpub', *sys.argv[1:]]\n"
    "runpy.run_module('feedpub', run_name='__main__', alter_sys=True)\n"
)


def story(title: str) -> str:
    when = real_now() - timedelta(hours=1)  # subprocesses keep the real clock
    return f"---\ntitle: {title}\ndate: {when:%Y-%m-%dT%H:%M:%SZ}\nbeat: world\n---\n{title}.\n"


def program(newsroom: Newsroom, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(newsroom.config_path), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=newsroom.root,
        timeout=120,
        check=False,
    )


def test_the_console_script_is_the_program_python_m_runs() -> None:
    """The installed ``feedpub`` script calls what ``python -m feedpub`` does (the
    tests below run the latter)."""
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="feedpub")
    assert script.value == "feedpub.cli:run"


def test_the_program_ends_with_its_commands_status_output_and_store_intact(
    newsroom: Newsroom,
) -> None:
    """A publish with one rejected file: exit status 1, the good article's feeds written
    and reported, the rejected file named; what is left is frozen at exit; the next
    process finds the store as the first left it (nothing to do, the file named again)."""
    newsroom.write("good.md", story("Harbour reopens"))
    newsroom.write("bad.md", "---\ntitle: [broken\n---\n")
    first = program(newsroom, "publish")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "bad.md:2" in first.stderr
    assert "rss.xml" in first.stdout and "changed" in first.stdout
    assert "frozen at exit: True" in first.stderr
    assert "Harbour reopens" in (newsroom.root / "feeds" / "rss.xml").read_text(encoding="utf-8")

    again = program(newsroom, "publish")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "bad.md:2" in again.stderr
    assert "nothing changed" in again.stdout

    version = program(newsroom, "--version")
    assert version.returncode == 0 and version.stdout.startswith("feedpub, version")
    assert "frozen at exit: True" in version.stderr
