"""bounces ingest|list|show|undo and suppression list|add|remove: bounce, complaint and
mailto-unsubscribe mail, and the addresses never to mail again."""

from __future__ import annotations

import json
import logging
import os
import sys

import click
from rich.markup import escape

from feedpub.commands.common import EXIT_REJECTED, App, handle_errors, pass_app

log = logging.getLogger("feedpub.bounces")


@click.group()
def bounces() -> None:
    """Bounce, complaint and unsubscribe mail (docs/bounces.md)."""


@bounces.command("ingest")
@click.argument("source", required=False)
@click.option(
    "--recipient",
    default=None,
    help="stdin: the address the MTA delivered the message to (default $ORIGINAL_RECIPIENT).",
)
@click.option(
    "--delete",
    is_flag=True,
    help="Maildir: delete OUR messages once stored (mail not ours is never touched).",
)
@pass_app
@handle_errors
def ingest_cmd(app: App, source: str | None, recipient: str | None, delete: bool) -> None:
    """Read bounce mail and apply what it says.

    SOURCE is - (one message on stdin: an MTA pipe), a Maildir folder, or omitted (the
    [bounces.mailbox] of the config: Maildir or IMAP). Only mail addressed to our VERP
    return path or List-Unsubscribe mailto address is read; anything else stays where it
    is, untouched. Each message is kept (raw) with what it did: `feedpub bounces list`.
    Ingesting the same message again changes nothing. Exit status 1 when a message
    could not be processed."""
    from feedpub.bounces.ingest import ingest
    from feedpub.bounces.mailbox import ingest_configured, ingest_maildir
    from feedpub.bounces.sources import read_stdin

    cfg, store, now = app.config, app.store, app.now()
    if source == "-":
        rcpt = recipient or os.environ.get("ORIGINAL_RECIPIENT") or None
        report = ingest(cfg, store, read_stdin(sys.stdin.buffer, rcpt), source="stdin", now=now)
    elif source:
        report = ingest_maildir(cfg, store, source, now, delete=delete)
    else:
        report = ingest_configured(cfg, store, now)
    store.record_run("bounces", now, app.now(), not report.errors, report.summary())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items())) or "none"
    actions = ", ".join(f"{k} {n}" for k, n in sorted(report.actions.items())) or "none"
    app.console.print(
        f"read {report.read}, not ours {report.not_ours} (left alone), already ingested "
        f"{report.duplicates}, stored {report.stored}; kinds: {kinds}; actions: {actions}",
        soft_wrap=True,
    )
    for e in report.errors:
        app.err.print(f"[red]error[/red] {escape(e)}", markup=True, soft_wrap=True)
    if report.errors:
        raise SystemExit(EXIT_REJECTED)


@bounces.command("list")
@click.option("--kind", default=None, help="Only this kind (hard, soft, complaint, ...).")
@click.option("--acted", is_flag=True, help="Only messages that changed something.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@pass_app
@handle_errors
def list_cmd(app: App, kind: str | None, acted: bool, limit: int, as_json: bool) -> None:
    """The ingested messages, newest first, with what each did."""
    from feedpub.bounces.review import listing

    with app.store.read() as conn:
        rows = listing(conn, kind=kind, acted=acted, limit=limit)
    if as_json:
        out = [
            {
                **{k: getattr(r, k) for k in r.__slots__ if k not in ("received", "undone")},
                "received": r.received.isoformat(),
                "undone": r.undone.isoformat() if r.undone else None,
            }
            for r in rows
        ]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False, sort_keys=True))
        return
    for r in rows:
        who = f"subscriber {r.subscriber_id}" if r.subscriber_id is not None else "-"
        where = f" edition {r.edition_id}" if r.edition_id is not None else ""
        app.console.print(
            f"{r.id}  {r.received:%Y-%m-%d %H:%M}  {r.kind:<11} {r.action:<24} "
            f"{r.status_code or '-':<6} {escape(r.recipient or '-')}  {who}{where}  "
            f"[dim]{escape(r.detector)}; {escape(r.note[:120])}[/dim]",
            soft_wrap=True,
        )
    app.console.print(f"{len(rows)} message(s); `feedpub bounces show ID` prints one")


@bounces.command("show")
@click.argument("bounce_id", type=int)
@pass_app
@handle_errors
def show_cmd(app: App, bounce_id: int) -> None:
    """Print the raw message BOUNCE_ID as it was received (for checking a decision)."""
    from feedpub.bounces.review import raw_message

    with app.store.read() as conn:
        raw = raw_message(conn, bounce_id)
    if raw is None:
        app.console.print("(the raw message was erased with its subscriber)")
        return
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()


@bounces.command("undo")
@click.argument("bounce_id", type=int)
@pass_app
@handle_errors
def undo_cmd(app: App, bounce_id: int) -> None:
    """Reverse what message BOUNCE_ID did (a false positive): the subscriber's status,
    subscriptions, hard-bounce count and suppression entry, where nothing changed them
    since."""
    from feedpub.bounces.review import undo

    with app.store.begin() as conn:
        done = undo(conn, bounce_id, app.now())
    log.warning("bounce undone", extra={"id": bounce_id, "restored": "; ".join(done)})
    for line in done:
        app.console.print(f"{bounce_id}: {escape(line)}")


@click.group()
def suppression() -> None:
    """Addresses never to mail again (complaints, hard bounces, erased, manual)."""


@suppression.command("list")
@click.option("--reason", default=None, help="complaint, hard-bounce, erased or manual.")
@pass_app
@handle_errors
def suppression_list(app: App, reason: str | None) -> None:
    """The suppression list (erased people show as a hash)."""
    from feedpub.lifecycle.suppression import listing

    with app.store.read() as conn:
        rows = listing(conn, reason)
    for r in rows:
        who = r.email or f"(erased) {r.address_hash[:16]}…"
        app.console.print(
            f"{escape(who)}  {r.reason}  {r.created:%Y-%m-%d %H:%M}"
            + (f"  bounce {r.bounce_id}" if r.bounce_id else "")
            + (f"  {escape(r.note)}" if r.note else ""),
            soft_wrap=True,
        )
    app.console.print(f"{len(rows)} suppressed address(es)")


@suppression.command("add")
@click.argument("email")
@click.option("--note", default="", help="Why (kept with the entry).")
@pass_app
@handle_errors
def suppression_add(app: App, email: str, note: str) -> None:
    """Never mail EMAIL again (reason "manual"): editions, imports and sign-ups skip it."""
    from feedpub.digest.subscribers import SubscriberError, normalize_email
    from feedpub.errors import UsageError
    from feedpub.lifecycle.suppression import AddressHasher, suppress

    try:
        addr = normalize_email(email)
    except SubscriberError as e:
        raise UsageError(str(e)) from None
    with app.store.begin() as conn:
        added = suppress(
            conn,
            AddressHasher(app.config.token_key()),
            addr,
            reason="manual",
            now=app.now(),
            note=note,
        )
    app.console.print(f"{escape(addr)}: {'suppressed' if added else 'already suppressed'}")


@suppression.command("remove")
@click.argument("email")
@pass_app
@handle_errors
def suppression_remove(app: App, email: str) -> None:
    """Take EMAIL off the suppression list (it is not subscribed again by this: they
    sign up again, or `subscribers add` / `import --resubscribe`)."""
    from feedpub.digest.subscribers import SubscriberError, normalize_email
    from feedpub.errors import UsageError
    from feedpub.lifecycle.suppression import AddressHasher, unsuppress

    try:
        addr = normalize_email(email)
    except SubscriberError as e:
        raise UsageError(str(e)) from None
    with app.store.begin() as conn:
        gone = unsuppress(conn, AddressHasher(app.config.token_key())(addr))
    if not gone:
        raise UsageError(f"{addr} is not on the suppression list")
    log.warning("suppression removed", extra={"email": addr})
    app.console.print(f"{escape(addr)}: removed from the suppression list")


COMMANDS = [bounces, suppression]
