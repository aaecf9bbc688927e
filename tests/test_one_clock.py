"""One clock: only the command layer, the daemon and feedpub.clock read the wall clock;
everything below takes ``now`` (or a Clock) from its caller, so a test that fixes ``now``
fixes it everywhere (and ``make test-future`` runs the suite years ahead)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedpub.clock import fixed, running_from

SRC = Path(__file__).resolve().parents[1] / "src" / "feedpub"
WALL_CLOCK = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time\(\)")
ALLOWED = {"clock.py", "cli.py", "scheduler/daemon.py"}


def test_nothing_below_the_command_layer_reads_the_wall_clock() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in ALLOWED or rel.startswith("commands/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WALL_CLOCK.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_running_clock_starts_at_the_given_time_and_advances() -> None:
    start = datetime(2041, 3, 1, 12, tzinfo=UTC)
    clock = running_from(start)
    a, b = clock(), clock()
    assert start <= a <= b < start + timedelta(seconds=5)


def test_clocks_refuse_naive_times() -> None:
    with pytest.raises(ValueError):
        running_from(datetime(2041, 3, 1))
    with pytest.raises(ValueError):
        fixed(datetime(2041, 3, 1))
