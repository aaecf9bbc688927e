"""collect: read every source into the store."""

from __future__ import annotations

import click

from feedpub.commands.common import App, handle_errors, pass_app


@click.command()
@pass_app
@handle_errors
def collect(app: App) -> None:
    """Read every configured source into the store and report what changed."""
    raise click.ClickException("collect is being built")


COMMANDS = [collect]
