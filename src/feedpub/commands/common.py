"""What every command shares: the loaded config, the store, the console, exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from feedpub.clock import Clock, system_clock
from feedpub.errors import FeedpubError
from feedpub.logs import setup_logging

if TYPE_CHECKING:  # imported when first used: `feedpub publish` with nothing to do and
    # `feedpub --help` need neither the configuration models nor the database layer
    from feedpub.config import Config
    from feedpub.store import Store

EXIT_OK = 0
EXIT_REJECTED = 1  # some input was rejected; the rest was published
EXIT_USAGE = 2  # usage or configuration error

P = ParamSpec("P")
R = TypeVar("R")

# Output width when it does not go to a terminal: wider than any line or table we print.
UNWRAPPED_WIDTH = 100_000


def _is_terminal(stderr: bool) -> bool:
    stream = sys.stderr if stderr else sys.stdout
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def make_console(*, stderr: bool = False) -> Console:
    """The console every command prints through (stdout, or stderr).

    On a terminal rich fits tables and lines to the window. Into a pipe, a file or a log
    (cron, systemd, CI, ``make run | tee``) there is no window: rich would assume 80
    columns (or the width of whatever terminal stdin is) and break table cells in the
    middle of a word ("folder:conten" / "t"). There nothing is wrapped: lines stay whole
    and tables are as wide as their content.

    Emoji codes stay text: a file ``content/:fire:/a.md`` or a title with ``:smile:`` in
    it is printed as it is named, not with rich's pictures in place of the codes."""
    if _is_terminal(stderr):
        return Console(stderr=stderr, highlight=False, emoji=False)
    return Console(
        stderr=stderr, highlight=False, emoji=False, width=UNWRAPPED_WIDTH, soft_wrap=True
    )


@dataclass
class App:
    config_path: Path
    log_level: str | None = None
    console: Console = field(default_factory=make_console)
    err: Console = field(default_factory=lambda: make_console(stderr=True))
    clock: Clock = system_clock  # the command layer's one reading of the wall clock
    _config: Config | None = None
    _store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from feedpub.config import load_config

            self._config = load_config(self.config_path)
            apply_logging_config(self._config, self.log_level)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from feedpub.store import Store

            self._store = Store(
                self.config.store_url, synchronous=self.config.store.sqlite_synchronous
            )
        return self._store

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def apply_logging_config(config: Config, flag: str | None, default: str = "WARNING") -> None:
    """[logging] applies to every command: its format always, its level when the file sets
    one (commands stay quiet at ``default`` otherwise); ``--log-level`` wins over both."""
    cfg = config.logging
    level = flag or (cfg.level if "level" in cfg.model_fields_set else default)
    setup_logging(level, cfg.format)


pass_app = click.make_pass_decorator(App)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn FeedpubError into a one-line message on stderr and its exit status."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FeedpubError as e:
            # escape: "[store] url" in a message is text, not a rich markup tag
            make_console(stderr=True).print(f"[red]error:[/red] {escape(str(e))}", markup=True)
            raise SystemExit(e.exit_code) from None

    return wrapper


def echo_rejections(app: App, rejected: list[Any]) -> None:
    """Print each rejected input: where (file:line) and why."""
    for r in rejected:
        app.err.print(f"[red]rejected[/red] {escape(str(r))}", markup=True, soft_wrap=True)
