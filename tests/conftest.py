"""Shared fixtures: a real temporary newsroom (config.toml, content/, SQLite file)."""

from __future__ import annotations

import logging
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedpub.config import Config, load_config
from feedpub.store import Store


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--wall-clock",
        default=os.environ.get("FEEDPUB_TEST_WALL_CLOCK") or None,
        metavar="ISO-DATE",
        help="run the suite with this process's wall clock moved to ISO-DATE (it keeps "
        "ticking): proves no test depends on today's date (make test-future)",
    )


_travel: Any = None


def pytest_configure(config: pytest.Config) -> None:
    """Move the wall clock before any test module is imported (module-level NOWs too).
    Monotonic time is left alone (timeouts, sockets); subprocesses keep the real date."""
    global _travel
    when = config.getoption("--wall-clock")
    if when:
        import time_machine

        dest = datetime.fromisoformat(when)
        if dest.tzinfo is None:
            dest = dest.replace(tzinfo=UTC)
        _travel = time_machine.travel(dest, tick=True)
        _travel.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _travel
    if _travel is not None:
        _travel.stop()
        _travel = None


def real_now() -> datetime:
    """The real wall clock, even while --wall-clock moves this process's: what a
    subprocess (which keeps the real date) reads. Tests that date content for a
    ``feedpub`` subprocess use this, so their assertions hold on any date."""
    if _travel is not None:
        from time_machine import escape_hatch

        return escape_hatch.datetime.datetime.now(UTC)
    return datetime.now(UTC)


def wait_until(cond: Callable[[], object], timeout: float, what: str, step: float = 0.02) -> None:
    """Poll ``cond`` until it is true; fail naming ``what`` after ``timeout`` seconds (on
    the monotonic clock, which --wall-clock does not move)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


def pytest_report_header(config: pytest.Config) -> str | None:
    when = config.getoption("--wall-clock")
    return f"wall clock moved to {when} (time-machine)" if when else None


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


# PostgreSQL: every machine of this project runs one on 127.0.0.1:5432 (trust auth). Each
# test gets a database of its own, dropped afterwards; no server answering is a skip that
# says so. FEEDPUB_TEST_POSTGRES_ADMIN_URL points elsewhere.
PG_ADMIN_URL = os.environ.get(
    "FEEDPUB_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin() -> Any:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as e:  # no driver, no server, refused
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN_URL} ({type(e).__name__}: {e})"[:300])
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for this test alone."""
    import uuid

    import sqlalchemy as sa

    engine = _pg_admin()
    name = f"feedpub_test_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pg_databases() -> Iterator[Callable[[], str]]:
    """Makes new, empty PostgreSQL databases for this test (as many as it asks for);
    the URL of each. All are dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    engine = _pg_admin()
    names: list[str] = []

    def make() -> str:
        name = f"feedpub_test_{uuid.uuid4().hex[:12]}"
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return engine.url.set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with engine.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


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
