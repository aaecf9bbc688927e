"""serve: the unsubscribe / preferences endpoints and the feeds folder over HTTP."""

from __future__ import annotations

import signal
from types import FrameType

import click

from feedpub.commands.common import App, handle_errors, pass_app
from feedpub.errors import UsageError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@pass_app
@handle_errors
def serve(app: App, host: str, port: int) -> None:
    """Serve unsubscribe (RFC 8058 one-click) and preferences links and the feeds folder.

    Put it behind nginx or Caddy for TLS (see docs/web.md). Stop it with Ctrl-C or SIGTERM."""
    from feedpub.web.server import make_server

    config = app.config
    _raise_open_files_limit(config.web.connection_limit + 64)
    try:
        server = make_server(config, app.store, host, port, clock=app.clock)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    app.err.print(
        f"feedpub serving on http://{host}:{server.server_port}/ "
        f"(feeds from {config.output_dir}); Ctrl-C to stop",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor: raise the soft limit towards ``wanted`` (at
    most the hard limit) so ``[web] connection_limit`` connections fit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


COMMANDS = [serve]
