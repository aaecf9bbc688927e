"""The reader's whole journey in a real browser: Playwright's Python package driving
Debian's headless Chromium (/usr/bin/chromium; never a downloaded browser) against
``feedpub serve`` on 127.0.0.1, with a real aiosmtpd sink for the mail.

Sign up from the page -> the confirmation mail (queued, then sent to the sink) -> open
its link (GET shows a button) -> confirm by POST -> choose beats on the preferences
page -> one-click unsubscribe (RFC 8058 POST) from the List-Unsubscribe header of a
digest. A screenshot of every page is saved in ``$FEEDPUB_TEST_ARTIFACTS`` (default
``test-artifacts/browser/``)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.clock import running_from
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.lifecycle.mailsend import drain
from feedpub.store import Store
from feedpub.web.server import make_server
from tests.conftest import Newsroom
from tests.smtpserver import SmtpTestServer
from tests.test_digest_support import NOW, article, hours_ago, put

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = (
    Path(
        os.environ.get(
            "FEEDPUB_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"
        )
    )
    / "browser"
)
PUBLIC = "https://news.example"


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _mails(smtp: SmtpTestServer, start: int) -> list[EmailMessage]:
    out = []
    for r in smtp.received[start:]:
        m = message_from_bytes(r.data, policy=policy.default)
        assert isinstance(m, EmailMessage)
        out.append(m)
    return out


def test_sign_up_confirm_choose_beats_and_unsubscribe_in_a_browser(
    newsroom: Newsroom, browser: Any
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with SmtpTestServer() as smtp:
        newsroom.set_config(
            f'[delivery]\nbackend = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
        )
        config = newsroom.config()
        store = Store(config.store_url)
        put(store, article(1, "technology", hours_ago(3)), article(2, "world", hours_ago(2)))
        clock = running_from(NOW)
        server = make_server(config, store, "127.0.0.1", 0, clock=clock)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        context = browser.new_context()
        page = context.new_page()

        def to_local(route: Any) -> None:  # the public https host is this test server
            route.fulfill(response=route.fetch(url=route.request.url.replace(PUBLIC, base)))

        page.route(f"{PUBLIC}/**", to_local)
        try:
            # 1. the sign-up page
            page.goto(f"{base}/subscribe/daily")
            page.screenshot(path=str(ARTIFACTS / "1-signup.png"), full_page=True)
            assert page.title() == "Subscribe — Test Daily"
            trap = page.locator("input[name=website]").bounding_box()  # the honeypot
            assert trap is not None and trap["x"] + trap["width"] <= 0  # off the page
            page.fill("input[name=email]", "Reader@Example.org")
            page.fill("input[name=name]", "Ann Reader")
            page.check("input[name=beat][value=technology]")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.screenshot(path=str(ARTIFACTS / "2-check-inbox.png"), full_page=True)
            assert page.locator("h1").inner_text() == "Check your inbox"
            assert smtp.received == []  # queued, not sent by the web request

            # 2. the confirmation mail, sent by the queue to the SMTP sink
            assert drain(config, store, clock=clock).sent == 1
            [mail] = _mails(smtp, 0)
            assert mail["To"] == "reader@example.org"
            body = mail.get_body(("plain",))
            assert body is not None
            found = re.search(r"https://\S+/confirm\?t=\S+", str(body.get_content()))
            assert found is not None

            # 3. opening the link shows a button and changes nothing
            page.goto(found.group(0))
            page.screenshot(path=str(ARTIFACTS / "3-confirm.png"), full_page=True)
            assert "Confirm your subscription" in page.locator("h1").inner_text()
            with store.read() as conn:
                assert subs.listing(conn)[0].status == "pending"

            # 4. confirming by POST
            page.click("text=Confirm my subscription")
            page.wait_for_load_state()
            page.screenshot(path=str(ARTIFACTS / "4-subscribed.png"), full_page=True)
            assert page.locator("h1").inner_text() == "You are subscribed"
            with store.read() as conn:
                [row] = subs.listing(conn)
            assert (row.status, row.subscription_status, row.beats) == (
                "active",
                "active",
                ("technology",),
            )

            # 5. the preferences page: choose beats
            page.click("text=choose your topics")
            page.wait_for_load_state()
            assert page.locator("input[name=beat][value=technology]").is_checked()
            page.check("input[name=beat][value=world]")
            page.uncheck("input[name=beat][value=technology]")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.screenshot(path=str(ARTIFACTS / "5-preferences.png"), full_page=True)
            assert "Saved." in page.content()
            with store.read() as conn:
                assert subs.listing(conn)[0].beats == ("world",)

            # 6. a digest arrives; its List-Unsubscribe one-click POST unsubscribes
            sent = len(smtp.received)
            report = send_newsletter(config, store, "daily", now=NOW)
            assert report.sent == 1
            [digest] = _mails(smtp, sent)
            assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            https = str(digest["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
            assert https.startswith(f"{PUBLIC}/unsubscribe?t=")
            r = context.request.post(
                https.replace(PUBLIC, base),
                form={"List-Unsubscribe": "One-Click"},
            )
            assert r.status == 200 and r.text() == "unsubscribed"
            with store.read() as conn:
                assert (
                    conn.execute(sa.select(s.subscriptions.c.status)).scalar_one() == "unsubscribed"
                )
            page.goto(https)
            page.screenshot(path=str(ARTIFACTS / "6-unsubscribe-page.png"), full_page=True)
            assert "Unsubscribe from Test Daily?" in page.locator("h1").inner_text()
        finally:
            context.close()
            server.shutdown()
            server.server_close()
            thread.join(5)
            store.close()
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert shots[:6] == [
        "1-signup.png",
        "2-check-inbox.png",
        "3-confirm.png",
        "4-subscribed.png",
        "5-preferences.png",
        "6-unsubscribe-page.png",
    ]
    assert all((ARTIFACTS / n).stat().st_size > 1000 for n in shots)
