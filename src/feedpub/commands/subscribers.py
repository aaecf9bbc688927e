"""subscribers add|remove|list|import: manage who gets which newsletter and beats."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from feedpub.commands.common import EXIT_REJECTED, App, handle_errors, pass_app
from feedpub.digest import subscribers as subs
from feedpub.errors import UsageError


def _usage(e: subs.SubscriberError) -> UsageError:
    return UsageError(str(e))


@click.group()
def subscribers() -> None:
    """Manage newsletter subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option(
    "--newsletter",
    "newsletters",
    multiple=True,
    help="Newsletter slug (repeatable). Default: every configured newsletter.",
)
@click.option("--beats", default="", help="Beats, ';'-separated. Empty: all of the newsletter's.")
@pass_app
@handle_errors
def add_cmd(app: App, email: str, name: str, newsletters: tuple[str, ...], beats: str) -> None:
    """Subscribe EMAIL (re-activates someone who had unsubscribed)."""
    cfg = app.config
    chosen = list(newsletters) or [n.slug for n in cfg.newsletters]
    try:
        with app.store.begin() as conn:
            addr, results = subs.add(
                cfg, conn, email, name=name, newsletters=chosen, beats=beats, now=app.now()
            )
    except subs.SubscriberError as e:
        raise _usage(e) from None
    for r in results:
        app.console.print(f"{escape(addr)}  {escape(r)}")


@subscribers.command("remove")
@click.argument("email")
@click.option("--newsletter", default=None, help="Only this newsletter (default: all).")
@click.option("--purge", is_flag=True, help="Also forget the name and every subscription.")
@pass_app
@handle_errors
def remove_cmd(app: App, email: str, newsletter: str | None, purge: bool) -> None:
    """Unsubscribe EMAIL. The address stays on file as unsubscribed, so an import never
    subscribes it again."""
    try:
        with app.store.begin() as conn:
            n = subs.remove(conn, email, newsletter=newsletter, now=app.now(), purge=purge)
    except subs.SubscriberError as e:
        raise _usage(e) from None
    app.console.print(f"unsubscribed {escape(email.strip())} ({n} subscription(s) changed)")


@subscribers.command("list")
@click.option("--newsletter", default=None, help="Only this newsletter.")
@pass_app
@handle_errors
def list_cmd(app: App, newsletter: str | None) -> None:
    """List subscribers and their subscriptions."""
    with app.store.read() as conn:
        rows = subs.listing(conn, newsletter)
    for r in rows:
        app.console.print(
            f"{escape(r.email)}  {r.status}  {r.newsletter or '-'}"
            f" ({r.subscription_status or '-'})  beats: {escape(';'.join(r.beats) or '(all)')}"
            + (f"  name: {escape(r.name)}" if r.name else ""),
            soft_wrap=True,
        )
    app.console.print(f"{len({r.id for r in rows})} subscriber(s)")


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@pass_app
@handle_errors
def import_cmd(app: App, file: Path) -> None:
    """Import FILE.csv (header: email,name,newsletter,beats; beats ';'-separated).

    Bad rows are reported with their line number and skipped; the rest are imported.
    Importing the same file twice changes nothing. Exit status 1 when a row was rejected."""
    with app.store.begin() as conn:
        report = subs.import_csv(app.config, conn, file, now=app.now())
    for line in report.rejected:
        app.err.print(f"[red]rejected[/red] {escape(line)}", markup=True, soft_wrap=True)
    app.console.print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"kept unsubscribed {report.kept_unsubscribed}, rejected {len(report.rejected)}"
    )
    if report.rejected:
        raise SystemExit(EXIT_REJECTED)


@subscribers.command("unsubscribe-token")
@click.argument("token")
@pass_app
@handle_errors
def unsubscribe_token_cmd(app: App, token: str) -> None:
    """Honour an unsubscribe TOKEN (a List-Unsubscribe mailto subject, or either URL).

    The token is checked with the key alone; a forged or altered one changes nothing
    (exit status 2)."""
    from feedpub.digest.tokens import UNSUBSCRIBE, find_token, verify_token

    raw = find_token(token)
    found = verify_token(app.config, raw, UNSUBSCRIBE)
    if found is None:
        raise UsageError("not a valid unsubscribe token (forged, altered or another key)")
    subscriber_id, newsletter = found
    with app.store.begin() as conn:
        changed = subs.unsubscribe_by_id(conn, subscriber_id, newsletter, app.now())
    what = "unsubscribed" if changed else "no such subscription (already removed?)"
    app.console.print(f"subscriber {subscriber_id} from {newsletter}: {what}")


COMMANDS = [subscribers]
