"""digest preview|send|list: newsletter editions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from feedpub.commands.common import App, handle_errors, pass_app
from feedpub.digest.send import SendReport, list_editions, send_newsletter, write_preview


@click.group()
def digest() -> None:
    """Preview, send and list newsletter editions."""


@digest.command("preview")
@click.argument("newsletter")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the files (default: preview/NEWSLETTER/ beside the config).",
)
@click.option("--subscriber", default=None, help="Render for this subscriber's beats.")
@pass_app
@handle_errors
def preview_cmd(app: App, newsletter: str, out: Path | None, subscriber: str | None) -> None:
    """Render the next edition without changing any state: writes digest.html,
    digest.txt and digest.eml (for a sample subscriber) and prints the folder."""
    p = write_preview(
        app.config, app.store, newsletter, now=app.now(), folder=out, sample_email=subscriber
    )
    if p.skipped:
        app.console.print(
            f"{newsletter}: nothing new since the last edition — it would be skipped "
            "(no mail sent); the preview shows an empty edition."
        )
    else:
        app.console.print(
            f"{newsletter}: {p.articles} article(s) for {p.recipients} recipient(s); "
            f"sample: {escape(p.sample)}"
        )
    app.console.print(str(p.folder))


def _print_report(app: App, r: SendReport) -> None:
    if r.status.startswith("dry-run"):
        app.console.print(
            f"{r.newsletter} slot {r.slot}: {r.status}; {r.articles} article(s), "
            f"{r.recipients} message(s) composed, nothing sent"
        )
        return
    what = "new edition" if r.created else "existing edition"
    app.console.print(
        f"{r.newsletter} No. {r.number} (slot {r.slot}, {what}): {r.status}; "
        f"{r.articles} article(s), {r.recipients} recipient(s); this run: sent {r.sent}, "
        f"failed {r.failed}, bounced {r.bounced}; still to send {r.remaining}"
    )
    for e in r.errors:
        app.err.print(f"[yellow]delivery[/yellow] {escape(e)}", markup=True)
    if r.archive is not None:
        app.console.print(f"archive: {r.archive}")


@digest.command("send")
@click.argument("newsletter")
@click.option("--extra", is_flag=True, help="An out-of-schedule edition (slot 'manual-...').")
@pass_app
@handle_errors
def send_cmd(app: App, newsletter: str, extra: bool) -> None:
    """Freeze the edition of the latest schedule slot (or resume it) and deliver it.

    Sending the same slot again sends nothing twice: it only resumes what is unsent."""
    r = send_newsletter(app.config, app.store, newsletter, now=app.now(), extra=extra)
    _print_report(app, r)
    if r.status in ("paused",):
        raise SystemExit(1)


@digest.command("list")
@click.argument("newsletter", required=False)
@pass_app
@handle_errors
def list_cmd(app: App, newsletter: str | None) -> None:
    """Editions and their delivery counts."""
    editions = list_editions(app.store, newsletter)
    if not editions:
        app.console.print("no editions yet")
    for e in editions:
        c = e.counts
        pending = c.get("queued", 0) + c.get("sending", 0) + c.get("failed", 0)
        app.console.print(
            f"{e.newsletter}  No. {e.number}  {e.slot}  {e.status:<8}  "
            f"articles {e.articles}  recipients {e.recipients}  sent {c.get('sent', 0)}  "
            f"pending {pending}  bounced {c.get('bounced', 0)}",
            soft_wrap=True,
        )


COMMANDS = [digest]
