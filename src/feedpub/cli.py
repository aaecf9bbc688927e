"""Command line: ``feedpub [--config PATH] COMMAND``. Thin: parse, call core, set exit status.

Exit status: 0 success; 1 some input was rejected but the rest was published;
2 usage or configuration error.

Commands are imported when they run, not when ``feedpub`` starts: ``COMMANDS`` names
each one's module and its one-line help, so ``feedpub --help`` (and a command that
needs little) does not pay for importing every other command (tests/test_cli_lazy.py
checks the registry against the commands themselves).
"""

from __future__ import annotations

import gc
import importlib
import os
from pathlib import Path

import click

from feedpub import __version__

# name -> ("module:attribute" of the click command or group, its one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bounces": (
        "feedpub.commands.bounces:bounces",
        "Bounce, complaint and unsubscribe mail (docs/bounces.md).",
    ),
    "build": (
        "feedpub.commands.build:build_cmd",
        "Write the feeds (RSS, Atom, JSON Feed, archives, feeds.opml, index.html).",
    ),
    "collect": (
        "feedpub.commands.content:collect_cmd",
        "Read every configured source into the store and report what changed.",
    ),
    "digest": ("feedpub.commands.digest:digest", "Preview, send and list newsletter editions."),
    "publish": (
        "feedpub.commands.build:publish_cmd",
        "Collect every source, then build the feeds; reports which feeds changed.",
    ),
    "run": (
        "feedpub.commands.daemon:run_cmd",
        "Run the scheduler: collect + build every [schedule] collect_every, each newsletter "
        "on its cron schedule in its own time zone.",
    ),
    "serve": (
        "feedpub.commands.web:serve",
        "Serve unsubscribe (RFC 8058 one-click) and preferences links and the feeds folder.",
    ),
    "status": (
        "feedpub.commands.status:status_cmd",
        "Show the daemon, the last collect/build, next runs, editions and the store.",
    ),
    "store": (
        "feedpub.commands.store:store_group",
        "The store itself: move it to another database.",
    ),
    "subscribers": ("feedpub.commands.subscribers:subscribers", "Manage newsletter subscribers."),
    "suppression": (
        "feedpub.commands.bounces:suppression",
        "Addresses never to mail again (complaints, hard bounces, erased, manual).",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the module of command ``name`` and return its click command."""
    module, attr = COMMANDS[name][0].split(":")
    cmd = getattr(importlib.import_module(module), attr)
    assert isinstance(cmd, click.Command), COMMANDS[name]
    return cmd


class LazyGroup(click.Group):
    """A group whose subcommands come from ``COMMANDS``, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of ``--help`` from the registry's one-line help, as
        click writes it for loaded commands, without importing any of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [
            (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
            if name in COMMANDS and name not in self.commands
            else (name, self.commands[name].get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=lambda: os.environ.get("FEEDPUB_CONFIG", "config.toml"),
    show_default="./config.toml or $FEEDPUB_CONFIG",
    help="Configuration file.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default=None,
    help="Override [logging] level.",
)
@click.version_option(__version__, prog_name="feedpub")
@click.pass_context
def main(ctx: click.Context, config_path: Path, log_level: str | None) -> None:
    """feedpub: publish a newsroom's articles as feeds and email digests."""
    from feedpub.commands.common import App
    from feedpub.logs import setup_logging

    app = App(config_path=config_path, log_level=log_level.upper() if log_level else None)
    setup_logging(app.log_level or "WARNING")
    ctx.obj = app
    ctx.call_on_close(app.close)


def run() -> None:
    """The ``feedpub`` program: the console script and ``python -m feedpub``.

    On the way out the interpreter collects garbage cycles again while it tears down its
    modules; with the database layer and the configuration models loaded that took about
    0.1 s of every ``publish`` (a third of a one-new-article publish at 100,000
    articles). Nothing of ours waits for it: the store is closed when the command ends
    (``App.close``), files are written whole before they are renamed, and ``atexit``
    handlers (logging's flush) still run. So the objects left are frozen (``gc.freeze``:
    no collection looks at them again) and the process ends without that walk. Only the
    program does this; tests invoke ``main`` and keep their collector."""
    try:
        main(prog_name="feedpub")
    finally:
        gc.freeze()
