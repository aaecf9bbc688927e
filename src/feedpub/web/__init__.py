"""``feedpub serve``: unsubscribe and preferences endpoints plus the feeds folder."""

from feedpub.web.app import WebApp
from feedpub.web.server import make_server

__all__ = ["WebApp", "make_server"]
