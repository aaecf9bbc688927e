"""digest preview|send|list|status|test: newsletter editions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from feedpub.commands.common import App, handle_errors, pass_app
from feedpub.delivery.manager import DeliveryReport
from feedpub.delivery.status import find_edition, ledger_status
from feedpub.digest.listing import list_editions
from feedpub.digest.preview import write_preview
from feedpub.digest.send import SendReport, send_newsletter
from feedpub.digest.subscribers import SubscriberError
from feedpub.digest.testmail import send_test
from feedpub.errors import UsageError


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
    try:
        p = write_preview(
            app.config, app.store, newsletter, now=app.now(), folder=out, sample_email=subscriber
        )
    except SubscriberError as e:
        raise UsageError(f"--subscriber: {e}") from None
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
    # A path is one line however long (soft_wrap: the terminal may fold it, rich never
    # breaks it) and plain text (markup=False: "[...]" in a folder name is not a tag).
    app.console.print(str(p.folder), soft_wrap=True, markup=False)


def _print_report(app: App, r: SendReport) -> None:
    for earlier in r.earlier:  # unfinished editions taken up first
        _print_report(app, earlier)
    if r.status == "paused" and r.edition_id is None:  # an earlier one paused: not reached
        app.console.print(f"{r.newsletter} slot {r.slot}: not sent (no SMTP server usable)")
        return
    if r.status.startswith("dry-run"):
        app.console.print(
            f"{r.newsletter} slot {r.slot}: {r.status}; {r.articles} article(s), "
            f"{r.recipients} message(s) composed, nothing sent",
            soft_wrap=True,
        )
        return
    what = "new edition" if r.created else "existing edition"
    no = f" No. {r.number}" if r.number is not None else ""  # skipped: no number
    app.console.print(
        f"{r.newsletter}{no} (slot {r.slot}, {what}): {r.status}; "
        f"{r.articles} article(s), {r.recipients} recipient(s); this run: sent {r.sent}, "
        f"failed {r.failed}, bounced {r.bounced}; still to send {r.remaining}",
        soft_wrap=True,
    )
    if r.elsewhere:
        app.console.print(
            f"{r.elsewhere} message(s) in flight under another sender's claim (it renews "
            "its lease while it sends); that sender records them"
        )
    if r.lost:
        app.err.print(
            f"[yellow]delivery[/yellow] {r.lost} result(s) not recorded: this sender stalled "
            "past its lease and another sender took those messages over",
            markup=True,
        )
    for e in r.errors:
        app.err.print(f"[yellow]delivery[/yellow] {escape(e)}", markup=True, soft_wrap=True)
    if r.archive is not None:
        # One line, as "archive: PATH", on a terminal of any width (rich used to move a
        # long path to a line of its own).
        app.console.print(f"archive: {r.archive}", soft_wrap=True, markup=False)


class _SendProgress:
    """A progress bar fed by the delivery manager after each recorded message: sent,
    failed (retried later), bounced, remaining and the rate this run."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.started = time.monotonic()

    def __call__(self, r: DeliveryReport) -> None:
        done = r.sent + r.failed + r.bounced
        if self.task is None:
            self.task = self.progress.add_task(
                "sending",
                total=max(r.due, done),
                sent=0,
                failed=0,
                bounced=0,
                remaining=0,
                rate=0.0,
            )
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.progress.update(
            self.task,
            total=max(r.due, done),
            completed=done,
            sent=r.sent,
            failed=r.failed,
            bounced=r.bounced,
            remaining=r.remaining,
            rate=done / elapsed,
        )


@contextmanager
def _progress_bar(app: App) -> Iterator[_SendProgress]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn(
            "sent {task.fields[sent]}  failed {task.fields[failed]}  "
            "bounced {task.fields[bounced]}  remaining {task.fields[remaining]}  "
            "{task.fields[rate]:.0f} msg/s"
        ),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=app.err, transient=False) as progress:
        yield _SendProgress(progress)


@digest.command("send")
@click.argument("newsletter")
@click.option(
    "--extra",
    is_flag=True,
    help="An out-of-schedule edition (slot 'manual-...'); an interrupted one that still "
    "owes messages is resumed first.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Compose every message the edition would send; freeze, record and send nothing.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar (it goes to stderr).")
@pass_app
@handle_errors
def send_cmd(app: App, newsletter: str, extra: bool, dry_run: bool, no_progress: bool) -> None:
    """Freeze the edition of the latest schedule slot (or resume it) and deliver it.

    Sending the same slot again sends nothing twice: it only resumes what is unsent.
    When no SMTP server is usable the edition is paused (exit status 1) and the next
    run resumes it."""
    if dry_run or no_progress:
        r = send_newsletter(
            app.config, app.store, newsletter, now=app.now(), extra=extra, dry_run=dry_run
        )
    else:
        with _progress_bar(app) as bar:
            r = send_newsletter(
                app.config, app.store, newsletter, now=app.now(), extra=extra, progress=bar
            )
    _print_report(app, r)
    if not dry_run:
        _send_queued(app)
    if r.status in ("paused",):
        raise SystemExit(1)


def _send_queued(app: App) -> None:
    """The sender also drains the mail queue (confirmation and welcome messages)."""
    from feedpub.lifecycle.mailsend import drain

    q = drain(app.config, app.store, clock=app.clock)
    if q.sent or q.failed or q.bounced:
        app.console.print(
            f"queued mail (confirmations, welcomes): sent {q.sent}, failed {q.failed}, "
            f"bounced {q.bounced}"
        )


@digest.command("status")
@click.argument("edition")
@pass_app
@handle_errors
def status_cmd(app: App, edition: str) -> None:
    """Ledger counts of one edition: EDITION is an id, a newsletter (its latest edition),
    NEWSLETTER/NUMBER or NEWSLETTER/SLOT."""
    st = ledger_status(app.store, find_edition(app.store, edition))
    c = st.counts
    app.console.print(
        f"{st.newsletter}{f' No. {st.issue}' if st.issue is not None else ''}"
        f" (id {st.edition_id}, slot {st.slot}): {st.status}",
        soft_wrap=True,
    )
    # queued, sending, sent, failed, bounced, then any other (cancelled)
    app.console.print(
        "  ".join(f"{k} {n}" for k, n in c.items())
        + f"  total {st.total}  remaining {st.remaining}  attempts {st.attempts}",
        soft_wrap=True,
    )
    if st.next_attempt is not None:
        app.console.print(f"next retry: {st.next_attempt:%Y-%m-%d %H:%M:%S} UTC")
    for text, n in st.errors:
        app.console.print(f"{n} x {escape(text)}", soft_wrap=True)
    from feedpub.lifecycle.rates import edition_rates, warnings_for

    with app.store.read() as conn:
        r = edition_rates(conn, [st.edition_id])[st.edition_id]
    if r.delivered:
        app.console.print(
            f"bounced {r.bounced} ({r.bounce_rate:.2%})  soft bounces {r.soft}  "
            f"complaints {r.complaints} ({r.complaint_rate:.2%}) of {r.delivered} delivered"
        )
    for w in warnings_for(app.config, f"{st.newsletter} (id {st.edition_id})", r):
        app.err.print(f"[yellow]warning[/yellow] {escape(w)}", markup=True, soft_wrap=True)


@digest.command("test")
@click.argument("newsletter")
@click.option("--to", "to", required=True, help="The address to send the test message to.")
@pass_app
@handle_errors
def test_cmd(app: App, newsletter: str, to: str) -> None:
    """Send one message of the next edition to ADDRESS, outside the ledger: no edition is
    frozen and nothing is recorded. The subject starts with "[test]"."""
    try:
        t = send_test(app.config, app.store, newsletter, to, now=app.now())
    except SubscriberError as e:
        raise UsageError(f"--to: {e}") from None
    where = f"written to {t.path}" if t.path is not None else f"sent by {t.backend}"
    app.console.print(
        f"test message for {escape(t.recipient)} ({t.articles} article(s)) {where}; "
        f"Message-ID <{escape(t.message_id)}>",
        soft_wrap=True,
    )


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
            f"{e.newsletter}  {f'No. {e.issue}' if e.issue is not None else '-'}  "
            f"{e.slot}  {e.status:<8}  "
            f"articles {e.articles}  recipients {e.recipients}  sent {c.get('sent', 0)}  "
            f"pending {pending}  bounced {c.get('bounced', 0)}",
            soft_wrap=True,
        )


COMMANDS = [digest]
