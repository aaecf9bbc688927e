"""subscribers add|remove|list|import|export|erase: manage who gets which newsletter and
beats, and honour data-protection requests."""

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
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Also re-activate rows of people who unsubscribed or bounced (never suppressed "
    "addresses: `feedpub suppression remove` them first).",
)
@pass_app
@handle_errors
def import_cmd(app: App, file: Path, resubscribe: bool) -> None:
    """Import FILE.csv (header: email,name,newsletter,beats; beats ';'-separated).

    Bad rows are reported with their line number and skipped; the rest are imported.
    Importing the same file twice changes nothing. Someone who unsubscribed stays
    unsubscribed unless --resubscribe; a suppressed address (complaint, hard bounce,
    erased) is never imported. Exit status 1 when a row was rejected."""
    with app.store.begin() as conn:
        report = subs.import_csv(app.config, conn, file, now=app.now(), resubscribe=resubscribe)
    for line in report.rejected:
        app.err.print(f"[red]rejected[/red] {escape(line)}", markup=True, soft_wrap=True)
    app.console.print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"kept unsubscribed {report.kept_unsubscribed}, kept suppressed "
        f"{report.kept_suppressed}, rejected {len(report.rejected)}"
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


@subscribers.command("export")
@click.argument("email")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the JSON to this file (default: standard output).",
)
@pass_app
@handle_errors
def export_cmd(app: App, email: str, out: Path | None) -> None:
    """Everything held about EMAIL, as JSON (a data-subject access request): the
    subscriber, subscriptions, sign-ups and consent, every ledger row, bounce messages
    (raw), queued mail and any suppression entry. The export is logged."""
    import json
    import logging

    from feedpub.atomicfile import write_atomic
    from feedpub.lifecycle.rights import export
    from feedpub.lifecycle.suppression import AddressHasher

    hasher = AddressHasher(app.config.token_key())
    now = app.now()
    try:
        with app.store.read() as conn:
            data = export(conn, hasher, email, now)
    except subs.SubscriberError as e:
        raise _usage(e) from None
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        write_atomic(out, text.encode("utf-8"))
        app.err.print(f"written to {escape(str(out))}", soft_wrap=True)
    key = hasher(data["email"])[:16]
    app.store.record_run("data-rights", now, app.now(), True, {"action": "export", "address": key})
    logging.getLogger("feedpub.lifecycle").warning(
        "subscriber data exported", extra={"address_hash": key}
    )


@subscribers.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@handle_errors
def erase_cmd(app: App, email: str, yes: bool) -> None:
    """Delete the person behind EMAIL (right to erasure): subscriptions, consent
    records, queued mail and outbox files go; ledger rows and bounce records are
    anonymized; only a keyed hash stays on the suppression list so no import brings the
    address back. Cannot be undone. The erasure is logged (without the address)."""
    import logging

    from feedpub.lifecycle.rights import erase, remove_files
    from feedpub.lifecycle.suppression import AddressHasher

    try:
        addr = subs.normalize_email(email)
    except subs.SubscriberError as e:
        raise _usage(e) from None
    if not yes:
        click.confirm(f"Erase everything held about {addr}? This cannot be undone", abort=True)
    hasher = AddressHasher(app.config.token_key())
    now = app.now()
    with app.store.begin() as conn:
        report = erase(app.config, conn, hasher, addr, now)
    removed = remove_files(report.files)
    summary = {
        "action": "erase",
        "address": hasher(addr)[:16],
        **report.summary(),
        "files": removed,
    }
    app.store.record_run("data-rights", now, app.now(), True, summary)
    logging.getLogger("feedpub.lifecycle").warning(
        "subscriber erased", extra={k: v for k, v in summary.items() if k != "action"}
    )
    app.console.print(
        f"erased {escape(addr)}: {report.subscriptions} subscription(s) and "
        f"{report.signups} sign-up record(s) deleted, {report.ledger_rows} ledger row(s) and "
        f"{report.bounces} bounce message(s) anonymized, {report.queued_mail} queued "
        f"message(s) and {removed} outbox file(s) deleted; the address stays suppressed "
        "(as a keyed hash)",
        soft_wrap=True,
    )


COMMANDS = [subscribers]
