"""[logging] in config.toml applies to commands; --log-level overrides it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from feedpub.cli import main
from tests.conftest import Newsroom


def _collect(newsroom: Newsroom, *flags: str) -> list[str]:
    newsroom.write("a.md", "---\ntitle: Alpha\ndate: 2026-01-01 09:00\n---\nBody.\n")
    res = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *flags, "collect"])
    assert res.exit_code == 0, res.output
    return [line for line in res.stderr.splitlines() if line.strip()]


def test_logging_section_sets_format_and_level(newsroom: Newsroom) -> None:
    newsroom.set_config('[logging]\nlevel = "INFO"\nformat = "json"\n')
    lines = _collect(newsroom)
    records = [json.loads(line) for line in lines]
    collected = [r for r in records if r["msg"] == "collected"]
    assert collected and collected[0]["level"] == "info" and collected[0]["new"] == 1


def test_log_level_flag_overrides_config(newsroom: Newsroom) -> None:
    newsroom.set_config('[logging]\nlevel = "INFO"\nformat = "json"\n')
    assert _collect(newsroom, "--log-level", "ERROR") == []


def test_commands_stay_quiet_without_a_logging_level(newsroom: Newsroom) -> None:
    assert _collect(newsroom) == []  # default WARNING for interactive commands
