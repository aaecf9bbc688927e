"""Sign-up (double opt-in) on ``feedpub serve``: the pages and the POST endpoint.

- ``GET {subscribe path}/{newsletter}``: the sign-up page (``{subscribe path}`` alone
  lists the newsletters); ``POST`` to either, as an HTML form
  (``application/x-www-form-urlencoded`` or ``multipart/form-data``: ``email``, ``name``,
  ``newsletter``, ``beat`` (repeated) or ``beats`` (``a;b``), ``form``) or as JSON (the
  same keys; ``beats`` a list). The answer is the same whether the address is new,
  pending, subscribed, unsubscribed or suppressed, whether its daily mail limit was
  reached or the honeypot field was filled (no enumeration): "check your inbox" (HTML
  200, JSON 202). Only bad input (400, naming the field) and the per-client rate limit
  (429 with ``Retry-After``) differ, and neither depends on the address's state.
- ``GET {confirm path}?t=TOKEN`` shows a button and changes nothing (mail scanners
  prefetch links); ``POST`` confirms and records consent.

The confirmation mail is queued in the store in the request's transaction and sent by
the daemon: nothing here talks SMTP. Rate limits and tokens live in the store, so any
number of ``feedpub serve`` processes can answer behind one proxy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.clock import Clock
from feedpub.config import Config, NewsletterConfig
from feedpub.digest.subscribers import SubscriberError
from feedpub.digest.tokens import LinkMaker, Tokens
from feedpub.lifecycle import optin
from feedpub.lifecycle.ratelimit import hour_window
from feedpub.lifecycle.suppression import AddressHasher, is_suppressed
from feedpub.links import confirm_base, signup_url, subscribe_base
from feedpub.store import Store
from feedpub.web import pages

log = logging.getLogger("feedpub.web")

JSON_TYPE = "application/json"
_HOUR = timedelta(hours=1)


@dataclass
class Reply:
    """What the WebApp turns into a response: ``kind`` html / json / text / empty."""

    status: int
    kind: str
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, data: dict[str, Any], *headers: tuple[str, str]) -> Reply:
    body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return Reply(status, "json", body, [("Access-Control-Allow-Origin", "*"), *headers])


@dataclass(frozen=True, slots=True)
class Submitted:
    """A sign-up POST body, decoded (form or JSON)."""

    email: str = ""
    name: str = ""
    newsletter: str = ""
    beats: tuple[str, ...] = ()
    form: str = ""
    honeypot: str = ""


def submitted(
    fields: dict[str, list[str]], json_body: Any, path_newsletter: str | None
) -> Submitted:
    if isinstance(json_body, dict):
        raw_beats = json_body.get("beats", [])
        if isinstance(raw_beats, str):
            beats = tuple(raw_beats.split(";"))
        elif isinstance(raw_beats, list):
            beats = tuple(str(b) for b in raw_beats)
        else:
            beats = ()
        return Submitted(
            str(json_body.get("email", "") or ""),
            str(json_body.get("name", "") or ""),
            path_newsletter or str(json_body.get("newsletter", "") or ""),
            beats,
            str(json_body.get("form", "") or "api"),
            str(json_body.get("website", "") or ""),
        )

    def one(name: str) -> str:
        values = fields.get(name)
        return values[0] if values else ""

    beats = tuple(fields.get("beat", [])) + tuple(
        b for v in fields.get("beats", []) for b in v.split(";")
    )
    return Submitted(
        one("email"),
        one("name"),
        path_newsletter or one("newsletter"),
        beats,
        one("form") or "embed",
        one("website"),
    )


def client_ip(environ: dict[str, Any], header: str) -> str:
    """The client's address: the socket's, or (behind a proxy, ``[signup]
    client_ip_header``) the last address the proxy appended to that header."""
    if header:
        value = str(environ.get("HTTP_" + header.upper().replace("-", "_"), "") or "")
        last = value.split(",")[-1].strip()
        if last:
            return last[:64]
    return str(environ.get("REMOTE_ADDR", "") or "unknown")[:64]


class SignupPages:
    def __init__(self, config: Config, store: Store, tokens: Tokens, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.tokens = tokens
        self.clock = clock
        self.hasher = AddressHasher(config.token_key())
        self.subscribe_path = urlsplit(subscribe_base(config)).path or "/subscribe"
        self.confirm_path = urlsplit(confirm_base(config)).path or "/confirm"
        self.days = max(1, round(config.signup.confirm_within.total_seconds() / 86400))

    def suppressed(self, conn: Connection, subscriber_id: int) -> bool:
        """Whether the subscriber's address is on the suppression list."""
        email = conn.execute(
            sa.select(s.subscribers.c.email).where(s.subscribers.c.id == subscriber_id)
        ).scalar_one_or_none()
        return email is not None and is_suppressed(conn, self.hasher(str(email)))

    def handles(self, path: str) -> bool:
        if not self.config.signup.enabled:
            return False
        p = path.rstrip("/") or "/"
        return (
            p == self.subscribe_path
            or p == self.confirm_path
            or (
                p.startswith(self.subscribe_path + "/")
                and "/" not in p[len(self.subscribe_path) + 1 :]
            )
        )

    # ---- dispatch --------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        *,
        query: str,
        fields: dict[str, list[str]],
        json_body: Any,
        wants_json: bool,
        client_ip: str,
    ) -> Reply:
        p = path.rstrip("/") or "/"
        if p == self.confirm_path:
            return self.confirm(method, query, client_ip)
        slug = unquote(p[len(self.subscribe_path) + 1 :]) if p != self.subscribe_path else None
        if method == "OPTIONS":  # a CORS preflight for a JSON POST from the newsroom's site
            return Reply(
                204,
                "empty",
                headers=[
                    ("Access-Control-Allow-Origin", "*"),
                    ("Access-Control-Allow-Methods", "POST"),
                    ("Access-Control-Allow-Headers", "Content-Type"),
                    ("Access-Control-Max-Age", "86400"),
                ],
            )
        if method in ("GET", "HEAD"):
            return self.page(slug)
        if method != "POST":
            return Reply(405, "text", b"method not allowed", [("Allow", "GET, HEAD, POST")])
        return self.subscribe(submitted(fields, json_body, slug), wants_json, client_ip)

    def _newsletter(self, slug: str | None) -> NewsletterConfig | None:
        if not slug:
            return None
        try:
            return self.config.newsletter(slug)
        except KeyError:
            return None

    # ---- the sign-up page ------------------------------------------------------------
    def page(
        self,
        slug: str | None,
        *,
        status: int = 200,
        error: str = "",
        sub: Submitted | None = None,
    ) -> Reply:
        if slug is None and len(self.config.newsletters) == 1:
            slug = self.config.newsletters[0].slug
        nl = self._newsletter(slug)
        if slug is not None and nl is None:
            return Reply(
                404,
                "html",
                pages.message_page(
                    self.config, "Newsletter not found", "There is no such newsletter."
                ),
            )
        if nl is None:
            listed = [
                {
                    "title": n.title,
                    "description": n.description,
                    "url": signup_url(self.config, n.slug),
                }
                for n in self.config.newsletters
            ]
            return Reply(
                status, "html", pages.signup_page(self.config, newsletter=None, newsletters=listed)
            )
        chosen = set(sub.beats) if sub else set()
        beats = []
        for b in self.config.newsletter_beats(nl):
            try:
                title = self.config.beat(b).title
            except KeyError:
                title = b
            beats.append(pages.BeatChoice(b, title, b in chosen))
        url = signup_url(self.config, nl.slug) or ""
        return Reply(
            status,
            "html",
            pages.signup_page(
                self.config,
                newsletter={"slug": nl.slug, "title": nl.title, "description": nl.description},
                action=urlsplit(url).path,
                beats=beats,
                error=error,
                email=sub.email if sub else "",
                name=sub.name if sub else "",
                consent_text=self.config.signup.consent_text,
            ),
        )

    # ---- POST ------------------------------------------------------------------------
    def subscribe(self, sub: Submitted, wants_json: bool, client_ip: str) -> Reply:
        try:
            req = optin.validate(
                self.config,
                email=sub.email,
                name=sub.name,
                newsletter=sub.newsletter,
                beats=sub.beats,
                form=sub.form,
                ip=client_ip,
                honeypot=sub.honeypot,
            )
        except SubscriberError as e:
            if wants_json:
                return _json(400, {"status": "invalid", "error": str(e)})
            known = self._newsletter(sub.newsletter)
            return self.page(known.slug if known else None, status=400, error=str(e), sub=sub)
        now = self.clock()
        with self.store.begin() as conn:
            outcome, signup_id = optin.request_signup(self.config, conn, self.hasher, req, now)
        log.info(
            "sign-up",
            extra={"newsletter": req.newsletter, "outcome": outcome, "signup": signup_id or "-"},
        )
        if outcome == "ip-limited":
            retry = str(int((hour_window(now) + _HOUR - now).total_seconds()) + 1)
            text = "Too many sign-ups from your network. Please try again later."
            if wants_json:
                return _json(429, {"status": "rate-limited", "error": text}, ("Retry-After", retry))
            return Reply(
                429,
                "html",
                pages.message_page(self.config, "Please try again later", text),
                [("Retry-After", retry)],
            )
        nl = self.config.newsletter(req.newsletter)
        if wants_json:
            return _json(
                202,
                {
                    "status": "pending",
                    "message": "If this address can be subscribed, a confirmation email is on "
                    "its way to it.",
                },
            )
        return Reply(
            200,
            "html",
            pages.signup_sent_page(self.config, newsletter_title=nl.title, days=self.days),
        )

    # ---- confirmation ------------------------------------------------------------------
    def confirm(self, method: str, query: str, client_ip: str) -> Reply:
        if method not in ("GET", "HEAD", "POST"):
            return Reply(405, "text", b"method not allowed", [("Allow", "GET, HEAD, POST")])
        values = parse_qs(query, keep_blank_values=True).get("t", [])
        token = values[0] if len(values) == 1 else ""
        now = self.clock()
        if method == "POST":
            with self.store.begin() as conn:
                found = optin.confirm(
                    self.config, conn, self.hasher, self.tokens, token, ip=client_ip, now=now
                )
            if found.changed:
                log.info(
                    "sign-up confirmed",
                    extra={"newsletter": found.newsletter, "subscriber": found.subscriber_id},
                )
        else:
            with self.store.read() as conn:
                found = optin.look(conn, self.tokens, token, now)
        title = self._title(found.newsletter)
        if found.state == "invalid":
            return Reply(
                400,
                "html",
                pages.message_page(
                    self.config,
                    "Invalid link",
                    "This confirmation link is not valid. Some mail programs cut long links: "
                    "open it from the email again, or copy the whole of it into the address bar.",
                ),
            )
        if found.state == "expired":
            again = signup_url(self.config, found.newsletter or "") or self.config.site.base_url
            return Reply(
                410,
                "html",
                pages.message_page(
                    self.config,
                    "This link has expired",
                    f"Confirmation links work for {self.days} days. Please sign up again: {again}",
                ),
            )
        if found.state == "suppressed":
            return Reply(
                200,
                "html",
                pages.message_page(
                    self.config,
                    "We cannot subscribe this address",
                    "This address is on our do-not-mail list. Please write to the newsroom "
                    "if you want to receive our newsletters again.",
                ),
            )
        if found.state == "ok" and method != "POST":
            return Reply(
                200,
                "html",
                pages.confirm_page(
                    self.config,
                    newsletter_title=title,
                    action="?t=" + quote(token.strip(), safe=""),
                    done=False,
                    preferences_url=None,
                ),
            )
        prefs = None
        if found.subscriber_id is not None and found.newsletter is not None:
            try:
                url = LinkMaker(self.config, found.newsletter, self.tokens).preferences_url(
                    found.subscriber_id
                )
            except KeyError:
                url = None
            if url is not None:
                parts = urlsplit(url)
                prefs = f"{parts.path}?{parts.query}"  # served here, whatever the public host
        return Reply(
            200,
            "html",
            pages.confirm_page(
                self.config, newsletter_title=title, action="", done=True, preferences_url=prefs
            ),
        )

    def _title(self, newsletter: str | None) -> str:
        nl = self._newsletter(newsletter)
        return nl.title if nl else (newsletter or self.config.site.title)
