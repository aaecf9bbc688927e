"""The web endpoints as one WSGI application (PEP 3333): unsubscribe, preferences and
the feeds folder.

- ``{unsubscribe path}?t=TOKEN`` (the URL the digests carry, ``digest/tokens.py``):
  GET shows a confirmation page with a POST button and changes nothing (mail scanners
  prefetch links); any POST with a genuine token unsubscribes. RFC 8058 §3.1 one-click
  (body ``List-Unsubscribe=One-Click``, urlencoded or multipart) gets a short
  ``200 text/plain``; our own form gets the "you are unsubscribed" page. No cookies,
  no redirect (RFC 8058 §3.2). The token is checked with the key alone.
- ``{preferences path}?t=TOKEN``: GET shows the newsletter's beats as checkboxes with
  the subscriber's choice; POST saves it (none or all ticked = all beats).
- Everything under ``[output] base_url``'s path: the output folder (``static.py``).

The token in the URL is the only credential (a capability; RFC 8058 §3.2 forbids
needing cookies), so no cookies are ever set and CSRF tokens would add nothing. Pages
that carry a token are ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``.
An invalid token gets the same 400 whoever it names: nothing reveals whether an
address or subscription exists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from feedpub.clock import Clock
from feedpub.config import Config
from feedpub.digest import subscribers as subs
from feedpub.digest.tokens import (
    PREFERENCES,
    UNSUBSCRIBE,
    LinkMaker,
    Tokens,
    preferences_base,
    tokens_for,
    unsubscribe_base,
)
from feedpub.feeds.plan import feeds_url
from feedpub.store import Store
from feedpub.web import pages
from feedpub.web.signup import Reply, SignupPages, client_ip
from feedpub.web.static import (
    StaticFile,
    StaticFiles,
    accepts_gzip,
    compressible,
    gzip_etag,
    not_modified,
)

log = logging.getLogger("feedpub.web")

MAX_BODY = 64 * 1024
StartResponse = Callable[..., Any]

_REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
_PAGE_HEADERS = [
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
]
_BAD_LINK = (
    "This link is not valid. Some mail programs cut long links: open the link from the "
    "email again, or copy the whole of it into the address bar."
)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: StaticFile | None = None

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self


def _html(status: int, body: bytes) -> Response:
    return Response(status, [("Content-Type", "text/html; charset=utf-8"), *_PAGE_HEADERS], body)


def _text(status: int, text: str) -> Response:
    return Response(
        status, [("Content-Type", "text/plain; charset=utf-8"), *_PAGE_HEADERS], text.encode()
    )


def _reply(r: Reply) -> Response:
    if r.kind == "html":
        resp = _html(r.status, r.body)
    elif r.kind == "json":
        resp = Response(
            r.status,
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
            ],
            r.body,
        )
    elif r.kind == "text":
        resp = _text(r.status, r.body.decode("utf-8"))
    else:
        resp = Response(r.status)
    resp.headers.extend(r.headers)
    return resp


@dataclass(frozen=True, slots=True)
class Form:
    """A decoded POST body: every field's values."""

    fields: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def parse_form(content_type: str, body: bytes) -> Form:
    """``application/x-www-form-urlencoded`` or ``multipart/form-data`` (RFC 7578), the
    two encodings RFC 8058 §3.1 allows for the one-click POST. Anything else: no fields."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded" or (not ctype and b"=" in body):
        text = body.decode("utf-8", "replace")
        return Form(parse_qs(text, keep_blank_values=True))
    if ctype == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode(
            "latin-1", "replace"
        )
        msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        out: dict[str, list[str]] = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    out.setdefault(name, []).append(payload.decode("utf-8", "replace").strip())
        return Form(out)
    return Form({})


class WebApp:
    """The WSGI application. Thread-safe: it keeps no per-request state; every write is
    one ``Store.begin()`` transaction."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        tokens: Tokens | None = None,
        clock: Clock,
    ) -> None:
        self.config = config
        self.store = store
        self.tokens = tokens or tokens_for(config)  # ConfigError when the key is unset
        self.clock = clock
        self.static = StaticFiles(config.output_dir)
        self.static_prefix = urlsplit(feeds_url(config)).path or "/"
        self.unsubscribe_path = urlsplit(unsubscribe_base(config)).path or "/"
        self.preferences_path = urlsplit(preferences_base(config)).path or "/"
        self.signup = SignupPages(config, store, self.tokens, clock)  # docs/signup.md

    # ---- WSGI ------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            raw = str(environ.get("PATH_INFO", "") or "/")
            # PEP 3333: PATH_INFO holds the percent-decoded bytes as latin-1.
            path = raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            resp = _text(400, "bad request path (not UTF-8)")
        else:
            try:
                resp = self.route(method, path, environ)
            except Exception:
                log.exception("request failed", extra={"method": method, "path": path})
                resp = _html(
                    500,
                    pages.message_page(
                        self.config,
                        "Something went wrong",
                        "Nothing was changed. Please try again in a few minutes.",
                    ),
                )
        return self._send(method, resp, start_response)

    def _send(self, method: str, resp: Response, start_response: StartResponse) -> Iterable[bytes]:
        headers = list(resp.headers)
        names = {k.lower() for k, _ in headers}
        f = resp.file
        if "content-length" not in names and resp.status != 304:
            headers.append(("Content-Length", str(f.size if f else len(resp.body))))
        start_response(f"{resp.status} {_REASONS.get(resp.status, 'Unknown')}", headers)
        if f is not None:
            if method == "HEAD" or resp.status == 304:
                f.file.close()
                return []
            return f.chunks()
        return [] if method == "HEAD" else [resp.body]

    # ---- routing ---------------------------------------------------------------------
    def route(self, method: str, path: str, environ: dict[str, Any]) -> Response:
        if self.signup.handles(path):
            return self.signup_route(method, path, environ)
        if path == self.unsubscribe_path:
            return self.unsubscribe(method, environ)
        if path == self.preferences_path:
            return self.preferences(method, environ)
        prefix = self.static_prefix
        if path.startswith(prefix) or path + "/" == prefix:
            if method not in ("GET", "HEAD"):
                return _text(405, "method not allowed").header("Allow", "GET, HEAD")
            return self.serve_static(method, path[len(prefix) :], environ)
        return _text(404, "not found")

    # ---- sign-up (web/signup.py) -----------------------------------------------------
    def signup_route(self, method: str, path: str, environ: dict[str, Any]) -> Response:
        fields: dict[str, list[str]] = {}
        body_json: Any = None
        ctype = str(environ.get("CONTENT_TYPE", ""))
        if method == "POST":
            body = self._read_body(environ)
            if body is None:
                return _text(413, "request body too large")
            if ctype.split(";", 1)[0].strip().lower() == "application/json":
                try:
                    body_json = json.loads(body or b"{}")
                except ValueError:
                    return _text(400, "the request body is not JSON")
            else:
                fields = parse_form(ctype, body).fields
        accept = str(environ.get("HTTP_ACCEPT", ""))
        reply = self.signup.handle(
            method,
            path,
            query=str(environ.get("QUERY_STRING", "")),
            fields=fields,
            json_body=body_json,
            wants_json=body_json is not None or accept.startswith("application/json"),
            client_ip=client_ip(environ, self.config.signup.client_ip_header),
        )
        return _reply(reply)

    # ---- unsubscribe -----------------------------------------------------------------
    def _token(self, environ: dict[str, Any], purpose: str) -> tuple[str, int, str] | None:
        q = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        values = q.get("t") or q.get("token") or []
        if len(values) != 1:
            return None
        found = self.tokens.verify(purpose, values[0])
        return None if found is None else (values[0].strip(), *found)

    def _title(self, newsletter: str) -> str:
        try:
            return self.config.newsletter(newsletter).title
        except KeyError:
            return newsletter

    def _links(self, newsletter: str) -> LinkMaker | None:
        try:
            return LinkMaker(self.config, newsletter, self.tokens)
        except KeyError:
            return None  # the newsletter is no longer configured

    def _read_body(self, environ: dict[str, Any]) -> bytes | None:
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        if n > MAX_BODY:
            return None
        return environ["wsgi.input"].read(n) if n > 0 else b""

    def unsubscribe(self, method: str, environ: dict[str, Any]) -> Response:
        if method not in ("GET", "HEAD", "POST"):
            return _text(405, "method not allowed").header("Allow", "GET, HEAD, POST")
        found = self._token(environ, UNSUBSCRIBE)
        if method == "POST":
            body = self._read_body(environ)
            if body is None:
                return _text(413, "request body too large")
            form = parse_form(str(environ.get("CONTENT_TYPE", "")), body)
            from_page = form.get("confirm") == "unsubscribe"
            if found is None:
                if from_page:
                    return _html(400, pages.message_page(self.config, "Invalid link", _BAD_LINK))
                return _text(400, "invalid or altered unsubscribe token; nothing was changed")
            _, sid, newsletter = found
            now = self.clock()
            with self.store.begin() as conn:
                changed = subs.unsubscribe_by_id(conn, sid, newsletter, now)
            log.info(
                "unsubscribe",
                extra={
                    "subscriber": sid,
                    "newsletter": newsletter,
                    "changed": changed,
                    "via": "page" if from_page else "one-click",
                },
            )
            if not from_page:  # RFC 8058 one-click (or any other client's POST)
                return _text(200, "unsubscribed")
            links = self._links(newsletter)
            return _html(
                200,
                pages.unsubscribe_page(
                    self.config,
                    newsletter_title=self._title(newsletter),
                    action="",
                    done=True,
                    preferences_url=links.preferences_url(sid) if links else None,
                ),
            )
        if found is None:
            return _html(400, pages.message_page(self.config, "Invalid link", _BAD_LINK))
        token, sid, newsletter = found
        links = self._links(newsletter)
        return _html(
            200,
            pages.unsubscribe_page(
                self.config,
                newsletter_title=self._title(newsletter),
                action="?t=" + quote(token, safe=""),
                done=False,
                preferences_url=links.preferences_url(sid) if links else None,
            ),
        )

    # ---- preferences -----------------------------------------------------------------
    def preferences(self, method: str, environ: dict[str, Any]) -> Response:
        if method not in ("GET", "HEAD", "POST"):
            return _text(405, "method not allowed").header("Allow", "GET, HEAD, POST")
        found = self._token(environ, PREFERENCES)
        if found is None:
            return _html(400, pages.message_page(self.config, "Invalid link", _BAD_LINK))
        token, sid, newsletter = found
        try:
            nl = self.config.newsletter(newsletter)
        except KeyError:
            return _html(
                404,
                pages.message_page(
                    self.config, "Newsletter not found", "This newsletter is no longer published."
                ),
            )
        allowed = self.config.newsletter_beats(nl)
        action = "?t=" + quote(token, safe="")
        saved, error, status = False, "", 200
        if method == "POST":
            body = self._read_body(environ)
            if body is None:
                return _text(413, "request body too large")
            form = parse_form(str(environ.get("CONTENT_TYPE", "")), body)
            unknown = [b for b in form.getall("beat") if b.strip() and b.strip() not in allowed]
            try:
                if unknown:  # a stale form or a hand-made request: say it in readers' words
                    raise subs.SubscriberError(pages.unknown_topics(self.config, nl, unknown))
                chosen = subs.parse_beats(self.config, newsletter, form.getall("beat"))
            except subs.SubscriberError as e:
                error, status = str(e), 400
            else:
                if set(chosen) == set(allowed):
                    chosen = ()  # all ticked: every beat, including ones added later
                resubscribe = form.get("resubscribe") == "1"
                with self.store.begin() as conn:
                    if resubscribe and self.signup.suppressed(conn, sid):
                        resubscribe = False  # a complaint or erasure: not from this page
                        error = (
                            "This address is on our do-not-mail list, so it stays "
                            "unsubscribed; please write to the newsroom."
                        )
                    saved = subs.set_beats_by_id(
                        conn, sid, newsletter, chosen, self.clock(), resubscribe=resubscribe
                    )
                log.info(
                    "preferences saved",
                    extra={"subscriber": sid, "newsletter": newsletter, "beats": ";".join(chosen)},
                )
        with self.store.read() as conn:
            row = subs.subscription_by_id(conn, sid, newsletter)
        if row is None:
            return _html(
                404,
                pages.message_page(
                    self.config,
                    "Subscription not found",
                    "This subscription no longer exists. Subscribe again on our site.",
                ),
            )
        subscribed = row.subscription_status == "active" and row.status == "active"
        if saved and not subscribed and row.status == "bounced" and not error:
            error = (
                "Emails to this address could not be delivered, so it stays unsubscribed; "
                "please ask the newsroom to subscribe you again."
            )
        current = set(row.beats) or set(allowed)
        beats = []
        for slug in allowed:
            try:
                title = self.config.beat(slug).title
            except KeyError:
                title = slug
            beats.append(pages.BeatChoice(slug, title, slug in current))
        links = self._links(newsletter)
        return _html(
            status,
            pages.preferences_page(
                self.config,
                newsletter_title=nl.title,
                action=action,
                beats=beats,
                subscribed=subscribed,
                saved=saved,
                error=error,
                unsubscribe_url=links.unsubscribe_url(sid) if links else None,
            ),
        )

    # ---- static files ----------------------------------------------------------------
    def serve_static(self, method: str, rel: str, environ: dict[str, Any]) -> Response:
        found = self.static.open(rel)
        if found is None:
            return _text(404, "not found")
        if isinstance(found, str):
            location = self.static_prefix + quote(found, safe="/")
            return _text(301, "moved").header("Location", location)
        f = found
        packed = None
        if self.config.web.gzip and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
            packed = self.static.gzipped(f)
        headers = [
            ("ETag", gzip_etag(f.etag) if packed is not None else f.etag),
            ("Last-Modified", f.last_modified),
            ("Cache-Control", "public, max-age=60"),
            ("X-Content-Type-Options", "nosniff"),
            ("Access-Control-Allow-Origin", "*"),
        ]
        if self.config.web.gzip and compressible(f.content_type):
            headers.append(("Vary", "Accept-Encoding"))
        if not_modified(
            method,
            environ.get("HTTP_IF_NONE_MATCH"),
            environ.get("HTTP_IF_MODIFIED_SINCE"),
            f.etag,
            f.mtime,
        ):
            # RFC 9110 §15.4.5: a 304 carries ETag and Last-Modified, and Content-Length
            # only if it equals the 200's.
            size = len(packed) if packed is not None else f.size
            headers.append(("Content-Length", str(size)))
            return Response(304, headers, file=f)
        headers.append(("Content-Type", f.content_type))
        if packed is not None:
            f.file.close()
            headers.append(("Content-Encoding", "gzip"))
            return Response(200, headers, body=packed)
        return Response(200, headers, file=f)
