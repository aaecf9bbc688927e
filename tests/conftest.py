"""Shared fixtures: a real temporary newsroom (config.toml, content/, SQLite file)."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from feedpub.config import Config, load_config
from feedpub.store import Store

BASE_CONFIG = """
[site]
title = "Test Times"
base_url = "https://news.example/"
language = "en"
timezone = "Asia/Colombo"
article_path = "post/{slug}/"
default_beat = "world"

[store]
url = "sqlite:///feedpub.db"

[output]
dir = "feeds"
items_per_feed = 5

[[sources]]
type = "folder"
path = "content"

[[beats]]
slug = "russia-ukraine-war"
title = "Russia-Ukraine war"
authors = ["Iruni Kalupahana"]
tags = ["ukraine"]
keywords = ["Kremlin"]

[[beats]]
slug = "technology"
title = "Technology"
tags = ["tech"]
keywords = ["software"]

[[beats]]
slug = "world"
title = "World"

[[newsletters]]
slug = "daily"
title = "Test Daily"
from = "Test Times <news@news.example>"
schedule = "0 7 * * *"
timezone = "Europe/London"
postal_address = "1 Test Street, Testville"

[secrets]
token_key_env = "FEEDPUB_TEST_SECRET"
"""


@dataclass
class Newsroom:
    root: Path
    config_path: Path

    @property
    def content(self) -> Path:
        return self.root / "content"

    def config(self) -> Config:
        return load_config(self.config_path)

    def store(self) -> Store:
        return Store(self.config().store_url)

    def write(self, name: str, text: str) -> Path:
        p = self.content / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return p

    def set_config(self, extra: str = "", base: str = BASE_CONFIG) -> None:
        self.config_path.write_text(base + "\n" + textwrap.dedent(extra), encoding="utf-8")


@pytest.fixture
def newsroom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Newsroom]:
    """A temporary newsroom with a valid config, an empty content folder and its own DB."""
    monkeypatch.setenv("FEEDPUB_TEST_SECRET", "test-secret-key")
    (tmp_path / "content").mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(BASE_CONFIG, encoding="utf-8")
    yield Newsroom(tmp_path, cfg)


SEED = Path(__file__).resolve().parents[1] / "content" / "000_ba0e262c9b2a7c31.txt"


class LogRecords(logging.Handler):
    """Keeps every record it is handed (a test reads ``.records``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def scheduler_log() -> Iterator[LogRecords]:
    """Every record the scheduler logs during the test, DEBUG and up."""
    h = LogRecords()
    logger = logging.getLogger("feedpub.scheduler")
    old_level = logger.level
    logger.addHandler(h)
    logger.setLevel(logging.DEBUG)
    yield h
    logger.removeHandler(h)
    logger.setLevel(old_level)
