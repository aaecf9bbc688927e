"""Golden edition: fixed articles, fixed ``now``; the message's headers, text part and HTML
part (and the archive's Atom feed) must match tests/data/golden/digest/ byte for byte.

Regenerate after an intended change: ``make golden`` (tests/regenerate_golden.py), then
review the diff.
"""

from __future__ import annotations

import email
import email.policy
import os
import tempfile
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from feedpub.config import load_config
from feedpub.digest import send_newsletter
from feedpub.store import Store
from tests.conftest import BASE_CONFIG
from tests.test_digest_support import NOW, article, put, subscribe

GOLDEN = Path(__file__).parent / "data" / "golden" / "digest"
KEY_ENV, KEY = "FEEDPUB_TEST_SECRET", "test-secret-key"


def render_golden() -> dict[str, bytes]:
    """Send the golden edition into a temporary outbox; return the files to compare."""
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = KEY
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "config.toml").write_text(BASE_CONFIG, encoding="utf-8")
            cfg = load_config(root / "config.toml")
            store = Store(cfg.store_url)
            put(
                store,
                article(
                    1,
                    "russia-ukraine-war",
                    NOW - timedelta(hours=3),
                    title="Drones over the Black Sea top the agenda at Istanbul talks",
                    summary="Delegations met in Istanbul for a fourth round of technical "
                    "talks on the safety of commercial shipping.",
                    image=True,
                ),
                article(
                    2,
                    "russia-ukraine-war",
                    NOW - timedelta(hours=5),
                    title="Черги донорів у Львові — рекорд осені",
                    authors=("Оксана Мельник", "Iruni Kalupahana"),
                    summary="Львівський центр крові прийняв понад дві тисячі донорів.",
                ),
                article(
                    3,
                    "technology",
                    NOW - timedelta(hours=2),
                    title='Colombo start-up ships "offline first" payments app',
                    authors=("Arjun Mehta",),
                    summary="A five-person team built the app for shops with patchy <networks> & "
                    "power cuts.",
                ),
                article(4, "world", NOW - timedelta(hours=8), title="Elsewhere, briefly"),
            )
            subscribe(cfg, store, "reader@example.com", name="Ann Reader")
            report = send_newsletter(cfg, store, "daily", now=NOW)
            assert report.status == "sent", report
            data = (root / "outbox/daily/2026-11-26T0700Z/1.eml").read_bytes()
            atom = (root / "feeds/newsletters/daily/atom.xml").read_bytes()
            store.close()
    finally:
        if old is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = old
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return {
        "headers.txt": head.replace(b"\r\n", b"\n"),
        "text.txt": str(text.get_content()).replace("\r\n", "\n").encode("utf-8"),
        "html.html": str(html.get_content()).replace("\r\n", "\n").encode("utf-8"),
        "atom.xml": atom,
    }


def write_golden() -> list[Path]:
    out = []
    for name, data in render_golden().items():
        path = GOLDEN / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(path)
    return out


def test_golden_edition() -> None:
    files = render_golden()
    for name, data in files.items():
        expected = (GOLDEN / name).read_bytes()
        assert data == expected, f"{name} differs from {GOLDEN / name}; run `make golden`"


def test_golden_is_structurally_right() -> None:
    """The golden files are not just frozen: check what they must say."""
    files = render_golden()
    head = files["headers.txt"].decode()
    for field in (
        "From:", "To:", "Subject:", "Date:", "Message-ID:", "List-Id:",
        "List-Unsubscribe:", "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ):  # fmt: skip
        assert f"\n{field}" in "\n" + head
    text = files["text.txt"].decode()
    assert text.index("Russia-Ukraine war") < text.index("Technology") < text.index("World")
    assert "Черги донорів у Львові — рекорд осені" in text
    assert "By Оксана Мельник and Iruni Kalupahana" in text
    html = files["html.html"].decode()
    assert "&lt;networks&gt; &amp;" in html and "<networks>" not in html
