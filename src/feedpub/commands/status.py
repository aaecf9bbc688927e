"""status: what the daemon and the store are doing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from rich.markup import escape
from rich.table import Table

from feedpub.commands.common import App, handle_errors, pass_app
from feedpub.status import RunInfo, Status, gather_status


def _when(d: datetime | None, now: datetime) -> str:
    if d is None:
        return "-"
    delta = (d - now).total_seconds()
    ago = abs(delta)
    if ago < 90:
        rel = f"{ago:.0f}s"
    elif ago < 5400:
        rel = f"{ago / 60:.0f}m"
    elif ago < 172800:
        rel = f"{ago / 3600:.1f}h"
    else:
        rel = f"{ago / 86400:.1f}d"
    rel = f"in {rel}" if delta > 0 else f"{rel} ago"
    return f"{d.astimezone(UTC):%Y-%m-%d %H:%M}Z ({rel})"


def _no(issue: int | None) -> str:
    """An edition's number as readers and ``digest list`` see it; skipped ones have none."""
    return "-" if issue is None else f"#{issue}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _run_result(r: RunInfo | None) -> str:
    if r is None:
        return "never"
    summary = r.summary
    if "error" in summary:
        return f"[red]failed[/red]: {escape(str(summary['error']))}"
    parts = []
    counts = summary.get("counts")
    if isinstance(counts, dict):
        parts.append(", ".join(f"{k} {v}" for k, v in counts.items() if v))
    if summary.get("skipped") is True:
        parts.append("nothing changed")
    for key in ("written", "generation"):
        if key in summary:
            v = summary[key]
            parts.append(f"{key} {len(v) if isinstance(v, list) else v}")
    ok = "[green]ok[/green]" if r.ok else "[yellow]with problems[/yellow]"
    detail = "; ".join(p for p in parts if p)
    return f"{ok}{': ' + escape(detail) if detail else ''}"


def print_status(app: App, st: Status) -> None:
    c = app.console
    now = st.now
    lead = st.daemon.leader
    if lead is not None:
        c.print(
            f"daemon: [green]leader[/green] {lead.instance} on {lead.host} (pid {lead.pid}, "
            f"since {lead.since}, lease until {lead.expires}, token {lead.token})"
        )
    elif st.daemon.running:
        c.print(
            f"daemon: [green]running[/green] (pid {st.daemon.pid}"
            + (f", since {st.daemon.since}" if st.daemon.since else "")
            + ")"
        )
    elif st.daemon.lock == "lease:leader":
        c.print("daemon: [yellow]no leader[/yellow] (no feedpub run holds the leader lease)")
    else:
        c.print("daemon: [yellow]not running[/yellow]")

    runs = Table(title="last runs", title_justify="left")
    runs.add_column("job")
    runs.add_column("when", no_wrap=True)
    runs.add_column("result", overflow="fold")
    for name, r in (("collect", st.last_collect), ("build", st.last_build)):
        runs.add_row(name, _when(r.finished or r.started, now) if r else "-", _run_result(r))
    c.print(runs)

    nl = Table(title="newsletters", title_justify="left")
    for col in ("newsletter", "schedule", "next run", "last edition"):
        nl.add_column(col, overflow="fold")
    for n in st.newsletters:
        last = n.last_edition
        nl.add_row(
            escape(n.slug),
            escape(f"{n.schedule} {n.timezone}"),
            _when(n.next_run, now) + ("" if n.next_run_from == "daemon" else " [dim](cron)[/dim]"),
            f"{_no(last.issue)} {escape(last.slot)} {last.status}" if last else "-",
        )
    c.print(nl)

    ed = Table(title="editions", title_justify="left")
    for col in ("newsletter", "#", "slot", "status", "articles"):
        ed.add_column(col)
    for col in ("sent", "pending", "failed", "bounced"):
        ed.add_column(col, justify="right")
    for e in st.editions:
        ed.add_row(
            escape(e.newsletter),
            _no(e.issue).lstrip("#"),
            escape(e.slot),
            e.status,
            str(e.articles),
            str(e.sent),
            f"[yellow]{e.pending}[/yellow]" if e.pending else "0",
            f"[red]{e.failed}[/red]" if e.failed else "0",
            f"[red]{e.bounced}[/red]" if e.bounced else "0",
        )
    if st.editions:
        c.print(ed)
    else:
        c.print("editions: none yet")

    _print_health(app, st)

    src = Table(title="sources", title_justify="left")
    src.add_column("source", overflow="fold")
    src.add_column("last collect")
    src.add_column("note", overflow="fold")
    for info in st.sources:
        notes = []
        if info.disabled:
            notes.append(f"[red]disabled[/red]: {escape(info.disabled)}")
        if info.moved_to:
            notes.append(f"[yellow]moved permanently to[/yellow] {escape(info.moved_to)}")
        if info.error and not info.disabled:
            notes.append(escape(info.error))
        colour = "green" if info.status in ("ok", "not-modified") else "red"
        if info.status == "-":
            colour = "dim"
        src.add_row(escape(info.name), f"[{colour}]{info.status}[/{colour}]", "; ".join(notes))
    if st.sources:
        c.print(src)

    s = st.store
    c.print(
        f"store: {escape(s.url)}  size {_size(s.size_bytes)}  articles {s.articles} "
        f"({s.published} published)  subscribers {s.subscribers} ({s.active_subscribers} active)"
        f"  generation {st.generation}"
    )
    for w in st.warnings:
        app.err.print(f"[yellow]warning[/yellow] {escape(w)}")


def _rate(n: int, rate: float, warn: float) -> str:
    text = f"{n} ({rate:.2%})"
    return f"[red]{text}[/red]" if rate > warn else text


def _print_health(app: App, st: Status) -> None:
    """Bounce and complaint rates per newsletter (over the window) and per edition."""
    health = st.health
    if not health or not any(r["delivered"] for r in health.get("newsletters", {}).values()):
        return
    cfg = app.config.bounces
    t = Table(
        title=f"list health (last {health.get('window_days')} days; warn above bounces "
        f"{cfg.bounce_warn:.1%}, complaints {cfg.complaint_warn:.1%})",
        title_justify="left",
    )
    t.add_column("newsletter / edition")
    for col in ("delivered", "bounced", "soft", "complaints"):
        t.add_column(col, justify="right")
    rows = [(escape(k), r) for k, r in health.get("newsletters", {}).items()]
    for e in st.editions:
        r = health.get("editions", {}).get(str(e.id))
        if r and r["delivered"]:
            rows.append((f"  {escape(e.newsletter)} {_no(e.issue)}", r))
    for name, r in rows:
        t.add_row(
            name,
            str(r["delivered"]),
            _rate(r["bounced"], r["bounce_rate"], cfg.bounce_warn),
            str(r["soft_bounces"]),
            _rate(r["complaints"], r["complaint_rate"], cfg.complaint_warn),
        )
    app.console.print(t)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--editions",
    "n_editions",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="How many recent editions to list.",
)
@pass_app
@handle_errors
def status_cmd(app: App, as_json: bool, n_editions: int) -> None:
    """Show the daemon, the last collect/build, next runs, editions and the store."""
    st = gather_status(app.config, app.store, app.now(), editions=n_editions)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2, ensure_ascii=False, sort_keys=True))
    else:
        print_status(app, st)


COMMANDS = [status_cmd]
