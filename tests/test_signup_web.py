"""Sign-up through HTTP against a real ``feedpub serve`` on 127.0.0.1: double opt-in,
the mail queue drained to a real aiosmtpd sink, abuse limits and the no-enumeration
answer."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from lxml import html as lxml_html

from feedpub import schema as s
from feedpub.cli import main
from feedpub.config import Config
from feedpub.digest import subscribers as subs
from feedpub.lifecycle import optin
from feedpub.lifecycle.mailsend import drain
from feedpub.store import Store
from feedpub.web.server import make_server
from tests.conftest import Newsroom
from tests.smtpserver import SmtpTestServer
from tests.test_digest_support import NOW


class MovableClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> object:
        return self.now


@dataclass
class Site:
    config: Config
    store: Store
    base: str
    client: httpx.Client
    clock: MovableClock
    smtp: SmtpTestServer

    def post(self, email: str, **extra: object) -> httpx.Response:
        data = {"email": email, "newsletter": "daily", "form": "page", **extra}
        return self.client.post("/subscribe/daily", data=data)

    def deliver(self) -> list[EmailMessage]:
        """Drain the mail queue to the SMTP sink; the messages it got this time."""
        before = len(self.smtp.received)
        drain(self.config, self.store, clock=self.clock)  # type: ignore[arg-type]
        out = []
        for r in self.smtp.received[before:]:
            msg = message_from_bytes(r.data, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def local(self, url: str) -> str:
        p = urlsplit(url)
        return f"{self.base}{p.path}?{p.query}"

    def subscriber(self, email: str) -> subs.SubscriberRow | None:
        with self.store.read() as conn:
            rows = [r for r in subs.listing(conn) if r.email == email]
        return rows[0] if rows else None


EXTRA = """
[delivery]
backend = "smtp"
[delivery.smtp]
host = "127.0.0.1"
port = {port}
max_attempts = 2

[signup]
max_per_ip_per_hour = {per_ip}
max_mails_per_address_per_day = 2
"""


def _site(newsroom: Newsroom, per_ip: int = 1000) -> Iterator[Site]:
    with SmtpTestServer() as smtp:
        newsroom.set_config(EXTRA.format(port=smtp.port, per_ip=per_ip))
        config = newsroom.config()
        store = Store(config.store_url)
        clock = MovableClock()
        server = make_server(config, store, "127.0.0.1", 0, clock=clock)  # type: ignore[arg-type]
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                yield Site(config, store, base, client, clock, smtp)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
            store.close()


@pytest.fixture
def site(newsroom: Newsroom) -> Iterator[Site]:
    yield from _site(newsroom)


def _confirm_link(msg: EmailMessage) -> str:
    text = msg.get_body(("plain",))
    assert text is not None
    found = re.search(r"https://\S+/confirm\?t=\S+", str(text.get_content()))
    assert found is not None
    return found.group(0)


def test_sign_up_page_has_the_form_and_a_hidden_honeypot(site: Site) -> None:
    r = site.client.get("/subscribe/daily")
    assert r.status_code == 200
    doc = lxml_html.fromstring(r.content)
    form = doc.xpath("//form[@method='post']")[0]
    assert form.get("action") == "/subscribe/daily"
    names = set(doc.xpath("//form//input/@name"))
    assert {"email", "name", "beat", "newsletter", "website"} <= names
    assert doc.xpath("//input[@name='website']/ancestor::div[@aria-hidden='true']")
    assert r.headers["Cache-Control"] == "no-store"
    assert site.client.get("/subscribe/nope").status_code == 404


def test_double_opt_in_from_post_to_confirmed(site: Site) -> None:
    r = site.post("Reader@Example.org", name="Ann", beat=["technology", "world"])
    assert r.status_code == 200 and "Check your inbox" in r.text
    pending = site.subscriber("reader@example.org")
    assert pending is not None and pending.status == "pending"
    assert pending.subscription_status == "pending"
    # nothing was sent inline: the message waits in the queue
    assert site.smtp.received == []
    [mail] = site.deliver()
    assert mail["To"] == "reader@example.org"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in mail
    assert site.smtp.received[0].mail_from.startswith("bounces+q")
    html = mail.get_body(("html",))
    assert html is not None and "Confirm my subscription" in str(html.get_content())
    link = _confirm_link(mail)
    # GET (what a mail scanner does) changes nothing
    g = site.client.get(site.local(link))
    assert g.status_code == 200 and "Confirm my subscription" in g.text
    assert site.subscriber("reader@example.org").status == "pending"  # type: ignore[union-attr]
    action = lxml_html.fromstring(g.content).xpath("//form/@action")[0]
    p = site.client.post(site.local(link).split("?")[0] + action, data={"confirm": "subscribe"})
    assert p.status_code == 200 and "You are subscribed" in p.text
    row = site.subscriber("reader@example.org")
    assert row is not None and (row.status, row.subscription_status) == ("active", "active")
    assert row.beats == ("technology", "world") and row.name == "Ann"
    with site.store.read() as conn:
        consent = conn.execute(sa.select(s.signups)).one()
    assert consent.status == "confirmed" and consent.confirmed == NOW
    assert consent.ip == "127.0.0.1" and consent.confirm_ip == "127.0.0.1"
    assert consent.form == "page" and consent.wording == optin.wording_version(site.config)
    # the preferences link on the page works
    prefs = lxml_html.fromstring(p.content).xpath("//a[contains(@href,'preferences')]/@href")[0]
    assert site.client.get(prefs).status_code == 200
    # confirming again is harmless
    assert site.client.post(site.local(link), data={"confirm": "subscribe"}).status_code == 200


def test_json_sign_up(site: Site) -> None:
    r = site.client.post(
        "/subscribe",
        json={"email": "j@example.org", "newsletter": "daily", "beats": ["world"]},
    )
    assert r.status_code == 202 and r.json()["status"] == "pending"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    bad = site.client.post("/subscribe", json={"email": "nope", "newsletter": "daily"})
    assert bad.status_code == 400 and "not a valid email" in bad.json()["error"]
    pre = site.client.options("/subscribe")
    assert pre.status_code == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]


def test_bad_input_is_a_400_naming_the_problem(site: Site) -> None:
    r = site.post("not-an-address")
    assert r.status_code == 400 and "not a valid email address" in r.text
    r = site.post("a@example.org", beat="sports")
    assert r.status_code == 400 and "beat &#39;sports&#39; is not in newsletter" in r.text


def test_the_answer_is_identical_whatever_the_address_state(site: Site) -> None:
    cfg = site.config
    with site.store.begin() as conn:
        subs.add(cfg, conn, "active@example.org", newsletters=["daily"], now=NOW)
        subs.add(cfg, conn, "left@example.org", newsletters=["daily"], now=NOW)
        subs.remove(conn, "left@example.org", newsletter=None, now=NOW)
    site.post("pending@example.org")
    CliRunner().invoke(
        main, ["--config", str(cfg.path), "suppression", "add", "blocked@example.org"]
    )
    for _ in range(2):  # use up the address's daily mail limit
        site.post("limited@example.org")
    answers = {}
    for addr in ("new@example.org", "pending@example.org", "active@example.org",
                 "left@example.org", "blocked@example.org", "limited@example.org"):  # fmt: skip
        r = site.post(addr)
        answers[addr] = (r.status_code, r.content, sorted(r.headers.keys()))
    honeypot = site.post("bot@example.org", website="http://spam.example/")
    answers["honeypot"] = (honeypot.status_code, honeypot.content, sorted(honeypot.headers))
    assert len(set(map(repr, answers.values()))) == 1, answers
    # ...and JSON likewise
    j = {
        a: site.client.post("/subscribe", json={"email": a, "newsletter": "daily"}).content
        for a in ("new2@example.org", "active@example.org", "blocked@example.org")
    }
    assert len(set(j.values())) == 1
    mails = site.deliver()
    to = sorted(str(m["To"]) for m in mails)
    # the suppressed, the over-limit and the honeypot got nothing
    assert "blocked@example.org" not in to and "bot@example.org" not in to
    assert to.count("limited@example.org") == 2
    # existing subscribers were left as they were
    assert site.subscriber("active@example.org").status == "active"  # type: ignore[union-attr]
    assert site.subscriber("left@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_at_most_n_confirmation_mails_per_address_per_day(site: Site) -> None:
    for _ in range(5):
        assert site.post("victim@example.org").status_code == 200
    assert len(site.deliver()) == 2
    site.clock.now = NOW + timedelta(days=1)  # the next UTC day
    site.post("victim@example.org")
    assert len(site.deliver()) == 1


def test_per_client_rate_limit_is_429_with_retry_after(newsroom: Newsroom) -> None:
    for site in _site(newsroom, per_ip=3):
        codes = [site.post(f"r{i}@example.org").status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = site.post("r9@example.org")
        assert 0 < int(r.headers["Retry-After"]) <= 3600
        j = site.client.post("/subscribe", json={"email": "x@example.org", "newsletter": "daily"})
        assert j.status_code == 429 and j.json()["status"] == "rate-limited"
        site.clock.now = NOW + timedelta(hours=1)
        assert site.post("later@example.org").status_code == 200
        # the counters live in the store: a second server process would see them too
        with site.store.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(s.rate_counters)).scalar()


def test_an_active_subscriber_gets_new_beats_only_after_confirming(site: Site) -> None:
    with site.store.begin() as conn:
        subs.add(site.config, conn, "a@example.org", newsletters=["daily"], beats="world", now=NOW)
    site.post("a@example.org", beat="technology")
    assert site.subscriber("a@example.org").beats == ("world",)  # type: ignore[union-attr]
    [mail] = site.deliver()
    site.client.post(site.local(_confirm_link(mail)), data={"confirm": "subscribe"})
    assert site.subscriber("a@example.org").beats == ("technology",)  # type: ignore[union-attr]


def test_links_expire_and_pending_rows_are_deleted(site: Site) -> None:
    site.post("late@example.org")
    [mail] = site.deliver()
    link = site.local(_confirm_link(mail))
    site.clock.now = NOW + timedelta(days=7, minutes=1)
    r = site.client.post(link, data={"confirm": "subscribe"})
    assert r.status_code == 410 and "expired" in r.text
    assert site.subscriber("late@example.org").status == "pending"  # type: ignore[union-attr]
    with site.store.begin() as conn:
        assert optin.expire_pending(conn, site.clock.now) == 1
    assert site.subscriber("late@example.org") is None
    assert site.client.get(link).status_code == 410  # still "expired", not "invalid"


def test_a_forged_or_cut_token_changes_nothing(site: Site) -> None:
    site.post("f@example.org")
    [mail] = site.deliver()
    link = site.local(_confirm_link(mail))
    for bad in (link[:-3], link.replace("?t=1.", "?t=2."), link + "x"):
        assert site.client.post(bad, data={"confirm": "subscribe"}).status_code == 400
    assert site.subscriber("f@example.org").status == "pending"  # type: ignore[union-attr]


def test_a_suppressed_address_cannot_confirm(site: Site) -> None:
    site.post("later-suppressed@example.org")
    [mail] = site.deliver()
    CliRunner().invoke(
        main,
        ["--config", str(site.config.path), "suppression", "add", "later-suppressed@example.org"],
    )
    r = site.client.post(site.local(_confirm_link(mail)), data={"confirm": "subscribe"})
    assert "do-not-mail list" in r.text
    assert site.subscriber("later-suppressed@example.org").status == "pending"  # type: ignore[union-attr]


def test_welcome_message_when_configured(newsroom: Newsroom) -> None:
    for site in _site(newsroom):
        newsroom.set_config(EXTRA.format(port=site.smtp.port, per_ip=100) + "welcome = true\n")
        site.config = newsroom.config()
        site.post("w@example.org")
        [confirm] = site.deliver()
        # the running server has welcome off; confirm through the library with it on
        from feedpub.digest.tokens import tokens_for
        from feedpub.lifecycle.suppression import AddressHasher

        with site.store.begin() as conn:
            done = optin.confirm(
                site.config,
                conn,
                AddressHasher(site.config.token_key()),
                tokens_for(site.config),
                _confirm_link(confirm).split("t=")[1],
                ip="127.0.0.1",
                now=NOW,
            )
        assert done.changed
        [welcome] = site.deliver()
        assert welcome["Subject"] == "Welcome to Test Daily"
        body = welcome.get_body(("plain",))
        assert body is not None and "/preferences?t=" in str(body.get_content())


def test_sign_up_works_on_postgresql(newsroom: Newsroom, pg_url: str) -> None:
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(text.replace("sqlite:///feedpub.db", pg_url), encoding="utf-8")
    cfg = newsroom.config()
    store = Store(cfg.store_url)
    from feedpub.digest.tokens import tokens_for
    from feedpub.lifecycle.suppression import AddressHasher

    hasher = AddressHasher(cfg.token_key())
    try:
        outcomes = []
        for _ in range(4):
            req = optin.validate(
                cfg, email="pg@example.org", name="", newsletter="daily", beats=[], form="api",
                ip="2001:db8::1",
            )  # fmt: skip
            with store.begin() as conn:
                outcomes.append(optin.request_signup(cfg, conn, hasher, req, NOW)[0])
        assert outcomes == ["queued", "queued", "queued", "address-limited"]
        with store.read() as conn:
            first = conn.execute(sa.select(s.signups).order_by(s.signups.c.id)).first()
            keys = set(conn.execute(sa.select(s.rate_counters.c.key)).scalars())
        assert "ip:2001:db8::/64" in keys  # IPv6 clients counted per /64
        token = optin.make_token(tokens_for(cfg), first.id, first.expires)
        with store.begin() as conn:
            done = optin.confirm(cfg, conn, hasher, tokens_for(cfg), token, ip="::1", now=NOW)
        assert done.state == "ok" and done.changed
    finally:
        store.close()
