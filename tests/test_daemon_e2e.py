"""End to end: ``feedpub run`` as a real process on a temporary newsroom.

Collect every second; a new article file shows up in the feeds; a second daemon on the
same store is refused; ``feedpub status --json`` sees the running one; SIGTERM ends it
cleanly with exit status 0. Logs are JSON lines (from [logging]) and hold no secret.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import pytest

from tests.conftest import Newsroom

SMTP_SECRET = "smtp-password-never-logged"
WAIT = 60.0  # generous upper bound on a shared 2-core CI machine; not a timing assertion


def article(title: str, date: str) -> str:
    return f"---\ntitle: {title}\ndate: {date}\nbeat: world\n---\nA paragraph about {title}.\n"


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            pytest.fail(f"daemon exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def feed_titles(path: Path) -> set[str]:
    if not path.exists():
        return set()
    parsed = feedparser.parse(path.read_bytes())
    return {e.title for e in parsed.entries}


@pytest.fixture
def env(newsroom: Newsroom) -> Iterator[dict[str, str]]:
    e = dict(os.environ)
    e["FEEDPUB_TEST_SECRET"] = "test-secret-key"
    e["FEEDPUB_SMTP_PASSWORD"] = SMTP_SECRET
    e["PYTHONUNBUFFERED"] = "1"
    e["PYTHONWARNINGS"] = "ignore"  # library warnings are not log lines
    yield e


def feedpub(newsroom: Newsroom, *args: str) -> list[str]:
    return [sys.executable, "-m", "feedpub", "--config", str(newsroom.config_path), *args]


def test_daemon_end_to_end(newsroom: Newsroom, env: dict[str, str], tmp_path: Path) -> None:
    newsroom.set_config(
        """
        [schedule]
        collect_every = 1
        shutdown_timeout = 30

        [logging]
        level = "INFO"
        format = "json"
        """
    )
    newsroom.write("first.md", article("First dispatch from Odesa", "2026-01-10 09:00"))
    rss = newsroom.root / "feeds" / "rss.xml"
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            feedpub(newsroom, "run"), stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
        try:
            wait_for(
                "the first feed", lambda: "First dispatch from Odesa" in feed_titles(rss), proc
            )

            # a new article dropped into the content folder reaches the feeds
            newsroom.write("second.md", article("Grain corridor reopens", "2026-01-11 09:00"))
            wait_for(
                "the new article in rss.xml",
                lambda: "Grain corridor reopens" in feed_titles(rss),
                proc,
            )
            atom = feedparser.parse((newsroom.root / "feeds" / "atom.xml").read_bytes())
            assert {e.title for e in atom.entries} >= {"Grain corridor reopens"}

            # manual runs while the daemon works: same transactions, no conflict
            for cmd in ("publish",):  # collect + build
                manual = subprocess.run(
                    feedpub(newsroom, cmd), env=env, capture_output=True, timeout=WAIT
                )
                assert manual.returncode == 0, (cmd, manual.stderr.decode())
            assert feed_titles(rss) >= {"First dispatch from Odesa", "Grain corridor reopens"}

            # a second daemon on the same store is refused at once
            second = subprocess.run(
                feedpub(newsroom, "run"), env=env, capture_output=True, timeout=WAIT
            )
            assert second.returncode == 2
            message = second.stderr.decode()
            assert "already running" in message and f"pid {proc.pid}" in message

            # status sees the running daemon and the last collect
            st = subprocess.run(
                feedpub(newsroom, "status", "--json"), env=env, capture_output=True, timeout=WAIT
            )
            assert st.returncode == 0, st.stderr.decode()
            status = json.loads(st.stdout)
            assert status["daemon"]["running"] is True and status["daemon"]["pid"] == proc.pid
            assert status["last_collect"]["ok"] is True
            assert status["newsletters"][0]["slug"] == "daily"
            assert status["newsletters"][0]["next_run_from"] == "daemon"

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=WAIT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    lines = log_path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line is a JSON object
    messages = [r["msg"] for r in records]
    assert "daemon started" in messages
    assert "signal received" in messages and messages[-1] == "stopped"
    assert SMTP_SECRET not in log_path.read_text(encoding="utf-8")
    assert "test-secret-key" not in log_path.read_text(encoding="utf-8")

    # the lock died with the process: a new daemon could start now
    st = subprocess.run(
        feedpub(newsroom, "status", "--json"), env=env, capture_output=True, timeout=WAIT
    )
    assert json.loads(st.stdout)["daemon"]["running"] is False
