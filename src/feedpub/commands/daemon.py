"""run: the scheduler daemon (``feedpub run``)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import click

from feedpub.commands.common import EXIT_OK, App, apply_logging_config, handle_errors, pass_app
from feedpub.scheduler.daemon import Daemon

log = logging.getLogger("feedpub.daemon")

EXIT_UNCLEAN = 1  # shutdown timed out with a job still running


def configure_daemon_logging(app: App) -> None:
    """The daemon logs at [logging] level (default INFO) unless --log-level says otherwise,
    in [logging] format; APScheduler's own messages go through the same handler."""
    apply_logging_config(app.config, app.log_level, default=app.config.logging.level)
    ours = logging.getLogger("feedpub")
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = list(ours.handlers)
    aps.setLevel(logging.WARNING)
    aps.propagate = False


@click.command("run")
@pass_app
@handle_errors
def run_cmd(app: App) -> None:
    """Run the scheduler: collect + build every [schedule] collect_every, each newsletter
    on its cron schedule in its own time zone.

    One daemon per store (a second one exits at once with status 2). After downtime, a
    newsletter slot missed within [schedule] misfire_grace is sent once at start; older
    slots are skipped and logged. SIGTERM or SIGINT: no new work, the running job finishes
    its current transaction, exit 0 (1 if [schedule] shutdown_timeout passed first).
    """
    configure_daemon_logging(app)
    daemon = Daemon(app.config, app.store, clock=app.now)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("already stopping", extra={"signal": signal.Signals(signum).name})
            return
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.start()  # LockedError -> exit status 2 with the holder's pid
        while not stop.wait(0.5):
            pass
        clean = daemon.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not clean:
        logging.shutdown()
        os._exit(EXIT_UNCLEAN)  # the worker thread is stuck; the ledger resumes it later
    raise SystemExit(EXIT_OK)


COMMANDS = [run_cmd]
