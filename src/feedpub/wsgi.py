"""The web endpoints as a plain WSGI application, for any WSGI server (an entry point, a
peer of the command line: it reads the configuration and runs on the system clock).

    gunicorn --workers 2 --threads 8 'feedpub.wsgi:create_app()'
    waitress-serve --call feedpub.wsgi:create_app
    uwsgi --http 127.0.0.1:8080 --module feedpub.wsgi:application

The configuration is ``$FEEDPUB_CONFIG`` (else ``./config.toml``); the token key comes
from the variable it names, as for ``feedpub serve``. ``application`` builds the app on
its first request (importing this module does nothing).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from feedpub.clock import system_clock
from feedpub.config import load_config
from feedpub.logs import setup_logging
from feedpub.store import Store
from feedpub.web.app import WebApp
from feedpub.web.server import AccessLog

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app(config_path: str | os.PathLike[str] | None = None) -> WSGIApp:
    """The WSGI application for the newsroom of ``config_path`` (default
    ``$FEEDPUB_CONFIG`` or ``./config.toml``), with the structured access log."""
    path = Path(config_path or os.environ.get("FEEDPUB_CONFIG") or "config.toml")
    config = load_config(path)
    setup_logging(config.logging.level, config.logging.format)
    store = Store(config.store_url, synchronous=config.store.sqlite_synchronous)
    return AccessLog(WebApp(config, store, clock=system_clock))


_app: WSGIApp | None = None
_lock = threading.Lock()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A module-level WSGI callable: the app of ``$FEEDPUB_CONFIG``, built once."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = create_app()
    return _app(environ, start_response)
