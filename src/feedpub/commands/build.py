"""build and publish: write the feeds; publish = collect + build."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from feedpub.clock import running_from
from feedpub.commands.common import App, handle_errors, pass_app

if TYPE_CHECKING:  # imported when a build runs: a publish with nothing to do needs none
    from feedpub.config import Config
    from feedpub.feeds import BuildReport
    from feedpub.store import Store


def run_build(config: Config, store: Store, now: datetime, *, force: bool) -> BuildReport:
    """Build and record the run (``feedpub status`` shows the last one)."""
    from feedpub.feeds import build_feeds

    clock = running_from(now)
    try:
        report = build_feeds(config, store, now=now, force=force)
    except Exception as e:
        store.record_run("build", now, clock(), False, {"error": str(e)})
        raise
    store.record_run("build", now, clock(), True, report.summary())
    return report


def print_build_report(app: App, report: BuildReport, *, verbose: bool = False) -> None:
    if report.skipped:
        app.console.print(f"feeds: nothing changed (generation {report.generation})")
        return
    app.console.print(
        f"feeds: {len(report.written)} file(s) written, {report.unchanged} unchanged, "
        f"{len(report.removed)} removed (generation {report.generation})"
    )
    for url in report.changed_feeds if not verbose else []:
        if url.endswith(".xml") and url.endswith("/atom.xml"):
            app.console.print(
                f"  changed {url.removesuffix('atom.xml')}{{rss.xml,atom.xml,feed.json}}",
                soft_wrap=True,
                markup=False,
            )
    for path, n in sorted(report.summarized.items()):
        app.console.print(
            f"  {path}: over [output] max_feed_bytes; its {n} oldest item(s) carry summaries",
            soft_wrap=True,
            markup=False,
        )
    for article_id, why in sorted(report.refused.items()):
        app.err.print(
            f"refused: article {article_id} is left out of the feeds ({why}); fix its "
            "source and collect again",
            soft_wrap=True,
            markup=False,
        )
    if verbose:
        for path in report.written:
            app.console.print(f"  wrote {path}", soft_wrap=True, markup=False)
    if report.ping is not None and report.ping.failed:
        app.err.print(
            f"[yellow]warning[/yellow] WebSub: {len(report.ping.failed)} of "
            f"{len(report.ping.failed) + len(report.ping.ok)} pings failed (see the log); "
            "the feeds are written",
            soft_wrap=True,
        )


@click.command("build")
@click.option(
    "--force",
    is_flag=True,
    help="Re-render every feed, ignoring what the last build recorded; a file whose bytes "
    "come out the same is left untouched (and not reported).",
)
@click.option("-v", "--verbose", is_flag=True, help="List every file written.")
@pass_app
@handle_errors
def build_cmd(app: App, force: bool, verbose: bool) -> None:
    """Write the feeds (RSS, Atom, JSON Feed, archives, feeds.opml, index.html).

    Only feeds whose content changed are rewritten; each file is replaced atomically.
    """
    report = run_build(app.config, app.store, app.now(), force=force)
    print_build_report(app, report, verbose=verbose)
    if report.refused:
        raise SystemExit(1)  # the other feeds are written; the refused articles are named


@click.command("publish")
@click.option("--force", is_flag=True, help="Re-render every feed (see build --force).")
@pass_app
@handle_errors
def publish_cmd(app: App, force: bool) -> None:
    """Collect every source, then build the feeds; reports which feeds changed.

    Exit status 1 when some input was rejected (everything else is still published).

    With nothing to do since the last clean publish (same configuration, no file added,
    removed or changed, nothing come due), this is proven without loading the store's
    articles (feedpub.quiet) and reported as the full run would report it.
    """
    from feedpub import quiet
    from feedpub.commands.content import collect_exit_code, print_collect_report

    now = app.now()
    probe = None if force or app.log_level else quiet.probe(app.config_path)
    done = None
    if probe is not None:
        from feedpub.workers import single_threaded, workers

        cores = workers() if single_threaded() else 1  # the check forks to stat on every core
        prepare = _full_path_imports if cores > 1 else None
        done = quiet.check(probe, now, running_from(now), processes=cores, prepare=prepare)
    if isinstance(done, quiet.QuietRun):
        creport = quiet.collect_report(done, now)
        print_collect_report(app, creport)
        app.console.print(f"feeds: nothing changed (generation {done.generation})")
        raise SystemExit(collect_exit_code(creport))

    from feedpub.collect import collect

    hints = done.folders if isinstance(done, quiet.Hints) else None
    creport = collect(app.config, app.store, now=now, hints=hints)
    print_collect_report(app, creport)
    report = run_build(app.config, app.store, now, force=force)
    print_build_report(app, report)
    quiet.remember(
        probe,
        app.config_path,
        app.config,
        app.store,
        creport,
        refused=bool(report.refused),
        logging_quiet=app.log_level is None and _logging_quiet(),
    )
    raise SystemExit(max(collect_exit_code(creport), 1 if report.refused else 0))


def _full_path_imports() -> None:
    """What the full publish imports first (about 0.3 s: the database layer, the
    configuration models, the parsers, the feed writers). The quiet check runs it while
    forked children walk a folder it already knows has changed."""
    import feedpub.collect
    import feedpub.feeds  # noqa: F401


def _logging_quiet() -> bool:
    """Nothing below WARNING is logged: the quiet path logs nothing, as the full path then."""
    import logging

    return logging.getLogger("feedpub").getEffectiveLevel() >= logging.WARNING


COMMANDS = [build_cmd, publish_cmd]
