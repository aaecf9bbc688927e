"""A real, threaded HTTP server on 127.0.0.1 for upstream-source tests and the bench.

Routes are set per test: status, body, headers, ETag/Last-Modified with real
conditional GET (304), an optional delay (slow server) and chunked bodies without a
Content-Length (to test the streaming size cap). Every request is logged.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).parent / "data" / "upstream"


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of concurrent connects then
    # waits for a SYN retransmit (1 s). Real servers use far larger backlogs.
    request_queue_size = 128


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    chunked: bool = False


@dataclass
class Hit:
    path: str
    headers: dict[str, str]


class UpstreamServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._get()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _get(self) -> None:
                with server._lock:
                    server.hits.append(
                        Hit(self.path, {k.lower(): v for k, v in self.headers.items()})
                    )
                    route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.delay:
                    time.sleep(route.delay)
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if route.status == 200 and (
                    (route.etag and inm == route.etag)
                    or (not inm and route.last_modified and ims == route.last_modified)
                ):
                    self._send(304, b"", self._validators(route))
                    return
                headers = {"Content-Type": route.content_type, **self._validators(route)}
                headers.update(route.headers)
                if route.chunked:
                    self._send_chunked(route.status, route.body, headers)
                else:
                    self._send(route.status, route.body, headers)

            def _validators(self, route: Route) -> dict[str, str]:
                out = {}
                if route.etag:
                    out["ETag"] = route.etag
                if route.last_modified:
                    out["Last-Modified"] = route.last_modified
                return out

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    # The client may hang up (size cap, timeout): expected.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

            def _send_chunked(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for i in range(0, len(body), 4096):
                        part = body[i : i + 4096]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up (size cap): expected

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> UpstreamServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, **kw: object) -> Route:
        r = Route(**kw)  # type: ignore[arg-type]
        self.routes[path] = r
        return r

    def serve_file(self, path: str, name: str, **kw: object) -> Route:
        return self.route(path, body=(DATA / name).read_bytes(), **kw)

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]


def running_server() -> Iterator[UpstreamServer]:
    srv = UpstreamServer().start()
    try:
        yield srv
    finally:
        srv.stop()
