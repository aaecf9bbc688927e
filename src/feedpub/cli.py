"""Command line: ``feedpub [--config PATH] COMMAND``. Thin: parse, call core, set exit status.

Exit status: 0 success; 1 some input was rejected but the rest was published;
2 usage or configuration error.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from feedpub import __version__
from feedpub.commands import bounces as bounce_cmds
from feedpub.commands import build as build_commands
from feedpub.commands import content
from feedpub.commands import daemon as daemon_cmds
from feedpub.commands import digest as digest_cmds
from feedpub.commands import status as status_cmds
from feedpub.commands import store as store_cmds
from feedpub.commands import subscribers as subscriber_cmds
from feedpub.commands import web as web_cmds
from feedpub.commands.common import App
from feedpub.logs import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    app = App(config_path=config_path, log_level=log_level.upper() if log_level else None)
    setup_logging(app.log_level or "WARNING")
    ctx.obj = app
    ctx.call_on_close(app.close)


for _cmd in content.COMMANDS:
    main.add_command(_cmd)
for _cmd in [*daemon_cmds.COMMANDS, *status_cmds.COMMANDS]:
    main.add_command(_cmd)
for _cmd in build_commands.COMMANDS:
    main.add_command(_cmd)
for _cmd in [*digest_cmds.COMMANDS, *subscriber_cmds.COMMANDS]:
    main.add_command(_cmd)
for _cmd in [*web_cmds.COMMANDS, *store_cmds.COMMANDS]:
    main.add_command(_cmd)
for _cmd in bounce_cmds.COMMANDS:
    main.add_command(_cmd)
