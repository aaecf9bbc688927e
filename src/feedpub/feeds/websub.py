"""WebSub publisher pings (W3C WebSub §6: "hub.mode=publish", "hub.url=<topic>").

The spec leaves the publish request to the hub; the de-facto form used by public hubs
(Google's pubsubhubbub, Superfeedr, WebSub.rocks) is a form-encoded POST per topic URL.
A ping is retried with exponential backoff on network errors and 5xx/429 answers; a
failing hub is logged and never fails the build.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a ping is sent: a build with nothing to ping skips it
    import httpx

log = logging.getLogger("feedpub.feeds.websub")


@dataclass
class PingReport:
    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def ping(
    hub: str,
    topics: Sequence[str],
    *,
    attempts: int = 3,
    backoff: float = 0.5,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> PingReport:
    """POST one publish notification per topic; never raises."""
    report = PingReport()
    if not topics:
        return report
    import httpx

    try:
        client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)
    except Exception as e:  # pragma: no cover - bad proxy settings and the like
        log.warning("websub hub unusable", extra={"hub": hub, "error": str(e)})
        report.failed.extend(topics)
        return report
    with client:
        for n, topic in enumerate(topics):
            last = ""
            unreachable = False
            for attempt in range(1, attempts + 1):
                try:
                    r = client.post(hub, data={"hub.mode": "publish", "hub.url": topic})
                    if r.status_code < 300:
                        report.ok.append(topic)
                        break
                    last = f"HTTP {r.status_code}"
                    if r.status_code < 500 and r.status_code != 429:
                        break  # the hub refuses this request: retrying will not help
                except httpx.HTTPError as e:
                    last = f"{type(e).__name__}: {e}"
                    unreachable = isinstance(e, httpx.TransportError)
                if attempt < attempts:
                    sleep(backoff * 2 ** (attempt - 1))
            if topic not in report.ok:
                report.failed.append(topic)
                log.warning("websub ping failed", extra={"hub": hub, "topic": topic, "error": last})
                if unreachable:
                    # The hub is down: do not spend attempts * backoff on every other topic.
                    rest = list(topics[n + 1 :])
                    report.failed.extend(rest)
                    if rest:
                        log.warning(
                            "websub hub unreachable; skipped the other pings",
                            extra={"hub": hub, "skipped": len(rest)},
                        )
                    break
    return report
