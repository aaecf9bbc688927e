"""Logging: [logging] in config.toml applies to commands; --log-level overrides it; every
record, ours or another library's, comes out structured, control characters quoted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.logs import LogfmtFormatter, setup_logging
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


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    setup_logging("WARNING")


def test_other_libraries_warnings_are_structured_too(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # asyncio (under aiosmtplib), sqlalchemy, httpx... log through the root logger; their
    # warnings and errors came out as bare text lines between our JSON lines.
    setup_logging("INFO", "json")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    logging.getLogger("some.library").info("chatter")  # below WARNING: not shown
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert [(r["logger"], r["level"], r["msg"]) for r in lines] == [
        ("asyncio", "error", "Task exception was never retrieved")
    ]


def test_logfmt_quotes_control_characters() -> None:
    # A carriage return or tab inside a value (an upstream error text) was written raw.
    record = logging.makeLogRecord(
        {"name": "feedpub.x", "levelname": "WARNING", "msg": "m", "error": "a\rb\tc"}
    )
    line = LogfmtFormatter().format(record)
    assert "\r" not in line and "\t" not in line
    assert 'error="a\\rb\\tc"' in line
