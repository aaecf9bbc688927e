"""Several ``feedpub serve`` processes behind one proxy behave as one: nothing the web
endpoints need lives in process memory. Sign-up rate limits are counters in the store,
pending sign-ups and the consent record are rows, tokens are signed with the newsroom's
key (no session table to share). Two servers on one PostgreSQL store, each with its own
connection pool, answering in turn."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from lxml import html as lxml_html

from feedpub import schema as s
from feedpub.lifecycle.mailsend import drain
from feedpub.store import Store
from feedpub.web.server import make_server
from tests.conftest import BASE_CONFIG, Newsroom
from tests.smtpserver import SmtpTestServer
from tests.test_signup_web import EXTRA, MovableClock


@contextmanager
def _server(newsroom: Newsroom, clock: MovableClock) -> Iterator[tuple[httpx.Client, Store]]:
    config = newsroom.config()
    store = Store(config.store_url)  # a pool of its own: another process as far as it knows
    server = make_server(config, store, "127.0.0.1", 0, clock=clock)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=10) as c:
            yield c, store
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        store.close()


def test_two_servers_on_one_store_count_one_rate_limit_and_honour_each_others_tokens(
    newsroom: Newsroom, pg_url: str
) -> None:
    clock = MovableClock()
    with SmtpTestServer() as smtp, ExitStack() as stack:
        base = BASE_CONFIG.replace('"sqlite:///feedpub.db"', f'"{pg_url}"')
        newsroom.set_config(EXTRA.format(port=smtp.port, per_ip=3), base=base)
        (a, store), (b, _) = (stack.enter_context(_server(newsroom, clock)) for _ in range(2))

        def post(client: httpx.Client, email: str) -> httpx.Response:
            data = {"email": email, "newsletter": "daily", "form": "page"}
            return client.post("/subscribe/daily", data=data)

        # One client, four sign-ups, spread over both servers: the limit of 3 an hour is
        # counted once, across both (per-process counters would have let all four in).
        codes = [post(c, f"r{i}@example.org").status_code for i, c in enumerate((a, b, a, b))]
        assert codes == [200, 200, 200, 429]
        with store.read() as conn:
            hits = conn.execute(sa.select(s.rate_counters.c.hits)).scalars().all()
        assert 4 in hits  # the per-client counter, shared

        # A confirmation asked for on server a is confirmed on server b.
        drain(newsroom.config(), store, clock=clock)  # type: ignore[arg-type]
        mail = message_from_bytes(smtp.received[0].data, policy=policy.default)
        body = mail.get_body(("plain",))  # type: ignore[attr-defined]
        found = re.search(r"https://\S+/confirm\?t=\S+", str(body.get_content()))
        assert found is not None
        link = urlsplit(found.group(0))
        page = b.get(f"{link.path}?{link.query}")
        assert page.status_code == 200 and "Confirm my subscription" in page.text
        action = lxml_html.fromstring(page.content).xpath("//form/@action")[0]
        done = b.post(link.path + action, data={"confirm": "subscribe"})
        assert done.status_code == 200 and "You are subscribed" in done.text
        # ... and the preferences link b's page gives works on a.
        prefs = lxml_html.fromstring(done.content).xpath("//a[contains(@href,'preferences')]/@href")
        p = urlsplit(prefs[0])
        assert a.get(f"{p.path}?{p.query}").status_code == 200
    with Store(pg_url) as check, check.read() as conn:
        confirmed = conn.execute(
            sa.select(s.signups.c.email).where(s.signups.c.status == "confirmed")
        ).scalars()
        assert list(confirmed) == [mail["To"]]
