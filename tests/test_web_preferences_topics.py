"""The preferences page's 400 for a topic the newsletter does not have names topics by
their titles, inside the page itself (its form and style), never raw slugs (issue 14
item 10)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import html as lxml_html

from feedpub.clock import running_from
from feedpub.digest.tokens import LinkMaker, tokens_for
from feedpub.store import Store
from feedpub.web.server import make_server
from tests.conftest import BASE_CONFIG, Newsroom
from tests.test_digest_support import NOW, subscribe


@pytest.fixture
def prefs(newsroom: Newsroom) -> Iterator[tuple[httpx.Client, str, Store, int]]:
    # "daily" carries two of the three beats; "Russia-Ukraine war" is configured elsewhere.
    newsroom.set_config(
        base=BASE_CONFIG.replace(
            'timezone = "Europe/London"\n',
            'timezone = "Europe/London"\nbeats = ["technology", "world"]\n',
            1,
        )
    )
    config = newsroom.config()
    store = Store(config.store_url)
    sid = subscribe(config, store, "ann@example.com", beats="technology")
    url = LinkMaker(config, "daily", tokens_for(config)).preferences_url(sid)
    server = make_server(config, store, "127.0.0.1", 0, clock=running_from(NOW))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    parts = urlsplit(url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=10) as c:
            yield c, f"{parts.path}?{parts.query}", store, sid
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        store.close()


def _error(page: str) -> tuple[str, lxml_html.HtmlElement]:
    doc = lxml_html.fromstring(page)
    (err,) = doc.xpath("//main//p[@class='error']")
    return " ".join(err.text_content().split()), doc


def test_a_beat_outside_the_newsletter_is_named_by_its_title(
    prefs: tuple[httpx.Client, str, Store, int],
) -> None:
    client, url, _store, _sid = prefs
    r = client.post(url, data={"beat": ["technology", "russia-ukraine-war"]})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    msg, doc = _error(r.text)
    assert msg == (
        "“Russia-Ukraine war” is not part of Test Daily; nothing was saved. "
        "Choose from Technology, World below."
    )
    assert "russia-ukraine-war" not in msg
    # The page itself: its stylesheet, its heading, the form to choose again.
    assert doc.xpath("//head/style") and doc.xpath("//h1[contains(., 'Test Daily')]")
    assert doc.xpath("//form//input[@type='checkbox'][@value='world']")


def test_an_unknown_slug_is_not_echoed(prefs: tuple[httpx.Client, str, Store, int]) -> None:
    client, url, store, sid = prefs
    r = client.post(url, data={"beat": ["sports", "<b>x</b>"]})
    assert r.status_code == 400
    msg, _doc = _error(r.text)
    assert msg == (
        "A topic you chose is no longer offered by Test Daily; nothing was saved. "
        "Choose from Technology, World below."
    )
    assert "sports" not in r.text
    from feedpub.digest import subscribers as subs

    with store.read() as conn:
        row = subs.subscription_by_id(conn, sid, "daily")
    assert row is not None and row.beats == ("technology",)  # nothing saved
