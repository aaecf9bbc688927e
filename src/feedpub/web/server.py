"""``feedpub serve`` on waitress: the one module that knows waitress (docs/web.md says why
waitress and not gunicorn or cheroot).

waitress reads every request — headers and body — in one asynchronous loop and hands it to
a bounded pool of worker threads only once it is complete. A slow or idle client (a
slowloris, a slow body) costs a socket and a buffer, never a thread; the threads only run
the application. On top of waitress's settings this module adds:

- a per-request deadline: a client that has not sent its whole request within
  ``[web] request_timeout`` of its first byte is disconnected (waitress alone only closes
  connections *idle* for ``idle_timeout``; a client trickling a byte at a time would stay);
- an access log in the structured log (``feedpub.web``), query strings redacted (they hold
  the unsubscribe and preferences tokens), and waitress's own messages in the same log;
- ``Server: feedpub`` (no Python version);
- waitress's "Task queue depth is N" warning, written for every request that waits for a
  worker, is silenced (under load it floods the log; the wait shows in the access log's
  ``ms``).

The application itself stays a plain WSGI callable (``feedpub.web.app.WebApp``; for other
servers ``feedpub.web.wsgi``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from feedpub.clock import Clock
from feedpub.config import Config, WebConfig
from feedpub.store import Store
from feedpub.web.app import WebApp

log = logging.getLogger("feedpub.web")
_QUERY = re.compile(r"\?[^\s\"]*")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def redact(text: str) -> str:
    """A request line or path without its query string (tokens are credentials)."""
    return _QUERY.sub("?…", text)


class AccessLog:
    """WSGI middleware: one structured log line per request (method, path without its
    query, status, client, milliseconds to the response headers)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        t0 = time.monotonic()

        def logged(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            path = str(environ.get("PATH_INFO", ""))
            if environ.get("QUERY_STRING"):
                path += "?…"
            log.info(
                "request",
                extra={
                    "method": environ.get("REQUEST_METHOD", ""),
                    "path": path,
                    "status": status.split(" ", 1)[0],
                    "client": environ.get("REMOTE_ADDR", ""),
                    "ms": round((time.monotonic() - t0) * 1000, 1),
                },
            )
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)


class _DeadlineChannel(HTTPChannel):  # type: ignore[misc]
    """A connection that remembers when the request it is receiving began."""

    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None:  # the first bytes of a new request
            self.request_started = time.monotonic()
        return bool(super().received(data))


class Server(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server with a deadline for receiving each request."""

    channel_class = _DeadlineChannel

    def __init__(self, app: WSGIApp, adj: Adjustments, request_timeout: float) -> None:
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        super().__init__(app, map={}, dispatcher=dispatcher, adj=adj)
        self.request_timeout = request_timeout
        self._stop = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_port(self) -> int:
        return int(self.effective_port)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # closes connections idle for longer than idle_timeout
        mono = time.monotonic()
        for ch in list(self.active_channels.values()):
            if (
                ch.request is not None
                and not ch.requests
                and not ch.will_close
                and mono - ch.request_started > self.request_timeout
            ):
                log.info(
                    "client too slow sending its request; disconnected",
                    extra={
                        "client": ch.addr[0] if ch.addr else "",
                        "seconds": round(mono - ch.request_started, 1),
                        "request_timeout": self.request_timeout,
                    },
                )
                ch.will_close = True

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run until :meth:`shutdown` (another thread) or a KeyboardInterrupt (SIGINT, or
        SIGTERM turned into one). Every socket is closed on this thread when it ends, so
        no descriptor is closed twice or polled after it was closed."""
        try:
            while not self._stop.is_set() and self._map:
                wasyncore.loop(timeout=poll_interval, map=self._map, use_poll=True, count=1)
        finally:
            for disp in list(self._map.values()):
                with contextlib.suppress(OSError):
                    disp.close()
            self._map.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serving (from another thread) and wait for the loop to end."""
        self._stop.set()
        if not self._stopped.is_set():
            with contextlib.suppress(OSError):
                self.trigger.pull_trigger()  # wake the loop
            self._stopped.wait(10)

    def server_close(self) -> None:
        """Stop the worker threads (and close the sockets if the loop never ran)."""
        self.task_dispatcher.shutdown(timeout=5)
        if not self._stopped.is_set():
            self._stop.set()
            for disp in list(self._map.values()):
                disp.close()
            self._map.clear()
            self._stopped.set()


def adjustments(web: WebConfig, host: str, port: int) -> Adjustments:
    return Adjustments(
        host=host,
        port=port,
        threads=web.threads,
        backlog=web.backlog,
        connection_limit=web.connection_limit,
        channel_timeout=max(int(web.idle_timeout.total_seconds()), 1),
        cleanup_interval=max(min(int(web.request_timeout.total_seconds()) // 4, 5), 1),
        max_request_body_size=1024 * 1024,
        max_request_header_size=64 * 1024,
        ident="feedpub",
        asyncore_use_poll=True,  # select() stops at 1,024 descriptors
        log_socket_errors=False,  # a client resetting its connection is not our error
        expose_tracebacks=False,
        # Pass X-Forwarded-For & co. through: the app decides whom to trust
        # ([signup] client_ip_header); waitress would strip them without a trusted_proxy.
        clear_untrusted_proxy_headers=False,
    )


def make_server(
    config: Config, store: Store, host: str = "127.0.0.1", port: int = 8080, *, clock: Clock
) -> Server:
    """A bound server (``port=0``: any free port, see ``server.server_port``); call
    ``serve_forever()`` to run it and ``shutdown()`` from another thread to stop it."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = AccessLog(WebApp(config, store, clock=clock))
    web = config.web
    return Server(app, adjustments(web, host, port), web.request_timeout.total_seconds())
