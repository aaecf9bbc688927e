"""The one module that talks HTTP (httpx) for upstream sources.

What it does for every request, so sources never see httpx:

- conditional GET: sends ``If-None-Match`` / ``If-Modified-Since`` when given
  validators and reports a 304 (RFC 9110 §13.1.1, §13.1.3; RFC 9111 §4.3);
- redirects followed by hand (at most ``MAX_REDIRECTS``) so a *permanent* move
  (301, 308; RFC 9110 §15.4.2, §15.4.9) can be told apart from a temporary one
  (302, 303, 307): the caller learns the URL to store;
- a timeout per phase (connect, read) *and* an overall deadline, so a server that
  trickles bytes cannot hold a worker forever;
- a response size cap checked on ``Content-Length`` and again while streaming
  (after decompression, so a gzip bomb is cut off too);
- per-host politeness (:class:`HostLimiter`): at most N requests in flight and at
  most R request starts per second to one host.

Every failure is a :class:`FetchError` with a ``kind`` the sources report per source.
"""

from __future__ import annotations

import email.utils
import functools
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from feedpub import __version__
from feedpub.errors import SourceError

MAX_REDIRECTS = 5
PERMANENT_REDIRECTS = frozenset({301, 308})
TEMPORARY_REDIRECTS = frozenset({302, 303, 307})
USER_AGENT = f"feedpub/{__version__} (+https://github.com/feedpub/feedpub)"

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
XML_ACCEPT = "application/xml, text/xml;q=0.9, */*;q=0.5"


class FetchError(SourceError):
    """One request failed. ``kind`` is one of: unreachable, timeout, http, gone,
    oversize, redirects, throttled."""

    def __init__(self, kind: str, url: str, message: str, *, status: int | None = None) -> None:
        self.kind = kind
        self.url = url
        self.status = status
        self.message = message
        super().__init__(f"{url}: {message}")


@dataclass(frozen=True, slots=True)
class Response:
    url: str  # the final URL (after redirects)
    status: int  # 200 or 304
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    # The URL to remember: the end of the leading run of permanent redirects
    # (A -301-> B -302-> C gives B). None when the first hop was not permanent.
    moved_to: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building a context (loading CA certificates) costs milliseconds; share one.
    return httpx.create_ssl_context()


def make_client(*, max_connections: int = 10) -> httpx.Client:
    """A client for one source's fetch. Cheap: the TLS context is shared."""
    return httpx.Client(
        verify=_ssl_context(),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        trust_env=False,
    )


def host_of(url: str) -> str:
    return (urlsplit(url).netloc or url).lower()


class HostLimiter:
    """Politeness per host: a cap on requests in flight and on request starts per second.

    Thread-safe; shared by the workers of one source's fetch.
    """

    def __init__(self, concurrency: int, per_second: float | None) -> None:
        self.concurrency = max(1, concurrency)
        self.interval = 1.0 / per_second if per_second else 0.0
        self._lock = threading.Lock()
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._next: dict[str, float] = {}

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host = host_of(url)
        with self._lock:
            sem = self._sems.setdefault(host, threading.BoundedSemaphore(self.concurrency))
        with sem:
            if self.interval:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next.get(host, now))
                    self._next[host] = start + self.interval
                delay = start - now
                if delay > 0:
                    time.sleep(delay)
            yield


def get(
    client: httpx.Client,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    accept: str = FEED_ACCEPT,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Response:
    """GET ``url`` following redirects. Raises FetchError for anything but 200/304."""
    deadline = time.monotonic() + timeout
    headers = {"Accept": accept, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    moved_to: str | None = None
    all_permanent = True
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        status, resp_headers, body, final = _one_request(
            client, current, headers, timeout=timeout, deadline=deadline, max_bytes=max_bytes
        )
        if status in PERMANENT_REDIRECTS or status in TEMPORARY_REDIRECTS:
            location = resp_headers.get("location")
            if not location:
                raise FetchError("http", current, f"HTTP {status} redirect without a Location")
            target = urljoin(current, location.strip())
            if urlsplit(target).scheme not in ("http", "https"):
                raise FetchError("http", current, f"redirect to a non-HTTP URL {target!r}")
            if status in PERMANENT_REDIRECTS and all_permanent:
                moved_to = target
            else:
                all_permanent = False
            current = target
            continue
        return _finish(status, resp_headers, body, final, url, moved_to)
    raise FetchError(
        "redirects", url, f"more than {MAX_REDIRECTS} redirects; last Location was {current}"
    )


def _finish(
    status: int,
    headers: httpx.Headers,
    body: bytes,
    final: str,
    asked: str,
    moved_to: str | None,
) -> Response:
    if status in (200, 304) or (200 <= status < 300 and status != 204):
        return Response(
            url=final,
            status=304 if status == 304 else 200,
            body=body,
            content_type=headers.get("content-type", ""),
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            moved_to=moved_to if moved_to and moved_to != asked else None,
        )
    reason = httpx.codes.get_reason_phrase(status) or "error"
    if status == 410:
        raise FetchError(
            "gone", final, f"HTTP 410 {reason}: the server says it is gone for good", status=status
        )
    if status in (429, 503) and headers.get("retry-after"):
        raise FetchError(
            "throttled",
            final,
            f"HTTP {status} {reason}; the server asks to retry after {headers['retry-after']}",
            status=status,
        )
    raise FetchError("http", final, f"HTTP {status} {reason}", status=status)


def _one_request(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    deadline: float,
    max_bytes: int,
) -> tuple[int, httpx.Headers, bytes, str]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("timeout", url, f"no complete answer within {timeout:g} s")
    try:
        with client.stream(
            "GET", url, headers=headers, timeout=httpx.Timeout(min(timeout, remaining))
        ) as r:
            if r.status_code in PERMANENT_REDIRECTS | TEMPORARY_REDIRECTS or r.status_code >= 300:
                # Redirects and errors: headers are enough; don't read a big error page.
                return r.status_code, r.headers, b"", str(r.url)
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    "oversize",
                    url,
                    f"response is {int(declared):,} bytes, over the limit of {max_bytes:,} "
                    "(raise max_bytes for this source if it is expected)",
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        "oversize",
                        url,
                        f"response exceeds the limit of {max_bytes:,} bytes "
                        "(raise max_bytes for this source if it is expected)",
                    )
                if time.monotonic() > deadline:
                    raise FetchError("timeout", url, f"no complete answer within {timeout:g} s")
                chunks.append(chunk)
            return r.status_code, r.headers, b"".join(chunks), str(r.url)
    except FetchError:
        raise
    except httpx.TimeoutException:
        raise FetchError("timeout", url, f"no answer within {timeout:g} s") from None
    except httpx.ConnectError as e:
        raise FetchError("unreachable", url, f"cannot connect: {_reason(e)}") from None
    except httpx.DecodingError as e:
        raise FetchError("http", url, f"cannot decode the response: {_reason(e)}") from None
    except (httpx.TransportError, httpx.InvalidURL) as e:
        raise FetchError("unreachable", url, f"connection failed: {_reason(e)}") from None


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]


def http_date_to_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
