"""Feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the site, every beat and every author,
with RFC 5005 archives, feeds.opml, index.html and WebSub pings.

Public API: :func:`build_feeds` and :class:`BuildReport`.
"""

from feedpub.feeds.build import BuildReport, build_feeds

__all__ = ["BuildReport", "build_feeds"]
