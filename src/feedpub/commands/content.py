"""collect: read every source into the store."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from feedpub.collect_report import KINDS, CollectReport
from feedpub.commands.common import EXIT_OK, EXIT_REJECTED, App, handle_errors, pass_app


def print_collect_report(app: App, report: CollectReport) -> None:
    table = Table(title="collect", title_justify="left")
    table.add_column("source", overflow="fold", min_width=12)
    for kind in KINDS:
        table.add_column(kind, justify="right", no_wrap=True, min_width=len(kind))
    for src in report.sources:
        label = escape(src.name if src.status == "ok" else f"{src.name} [{src.status}]")
        table.add_row(label, *(str(src.counts.get(k, 0)) for k in KINDS))
    if len(report.sources) > 1:
        table.add_row("[b]total[/b]", *(f"[b]{report.counts[k]}[/b]" for k in KINDS))
    app.console.print(table)
    for w in report.warnings:
        app.err.print(f"[yellow]warning[/yellow] {escape(w)}", soft_wrap=True)
    for e in report.rejected:
        app.err.print(f"[red]rejected[/red] {escape(str(e))}", soft_wrap=True, markup=True)
    for src in report.source_errors:
        app.err.print(
            f"[red]source {src.status}[/red] {escape(f'{src.name}: {src.error}')}", soft_wrap=True
        )


def collect_exit_code(report: CollectReport) -> int:
    return EXIT_REJECTED if report.rejected or report.source_errors else EXIT_OK


@click.command("collect")
@pass_app
@handle_errors
def collect_cmd(app: App) -> None:
    """Read every configured source into the store and report what changed.

    Prints new / updated / unchanged / retracted / scheduled / rejected per source,
    then each rejected input with its path, line and reason. Exit status 1 when
    anything was rejected (the rest is still stored).
    """
    from feedpub.collect import collect

    report = collect(app.config, app.store, now=app.now())
    print_collect_report(app, report)
    raise SystemExit(collect_exit_code(report))


COMMANDS = [collect_cmd]
