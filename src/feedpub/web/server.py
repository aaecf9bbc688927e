"""A threaded WSGI server from the standard library (``wsgiref``), meant to sit behind
nginx or Caddy (docs/web.md). One thread per request; the access log never shows query
strings (they hold the unsubscribe and preferences tokens)."""

from __future__ import annotations

import logging
import re
import socketserver
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as _make_server

from feedpub import __version__
from feedpub.clock import Clock
from feedpub.config import Config
from feedpub.store import Store
from feedpub.web.app import WebApp

log = logging.getLogger("feedpub.web")
_QUERY = re.compile(r"\?[^\s\"]*")


def redact(text: str) -> str:
    """A request line or path without its query string (tokens are credentials)."""
    return _QUERY.sub("?…", text)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung client never blocks shutdown
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    server_version = f"feedpub/{__version__}"
    timeout = 30  # seconds a client may stall mid-request before its thread is freed

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info(
            "request",
            extra={
                "method": self.command,
                "path": redact(self.path),
                "status": code,
                "client": self.client_address[0],
            },
        )

    def log_message(self, format: str, *args: Any) -> None:
        log.warning(redact(format % args))


def make_server(
    config: Config, store: Store, host: str = "127.0.0.1", port: int = 8080, *, clock: Clock
) -> ThreadingWSGIServer:
    """A bound server (``port=0``: any free port, see ``server.server_port``); call
    ``serve_forever()`` to run it and ``shutdown()`` from another thread to stop it."""
    app = WebApp(config, store, clock=clock)
    server = _make_server(
        host, port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    assert isinstance(server, ThreadingWSGIServer)
    return server
