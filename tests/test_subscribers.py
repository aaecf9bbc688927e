"""Subscribers: validation (an internationalized domain kept in its ASCII form), CLI
add/remove/list/import, idempotent CSV import that reports every bad row (an oversized
field too) and imports the rest."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.digest import subscribers as subs
from tests.conftest import Newsroom
from tests.test_digest_support import NOW, _run

CSV = """email,name,newsletter,beats
Ann@Example.COM,Ann,daily,
not-an-address,Bad,daily,
bob@example.com,Bob,daily,world;technology
cy@example.com,Cy,weekly,
dee@example.com,Dee,daily,sports
ann@example.com,Ann again,daily,world
,Nobody,daily,
"""


def test_normalize_email() -> None:
    assert subs.normalize_email("  Ann@Example.COM ") == "ann@example.com"
    with pytest.raises(subs.SubscriberError, match="not a valid email"):
        subs.normalize_email("ann@")
    with pytest.raises(subs.SubscriberError):
        subs.normalize_email("ünï@example.com")  # would need SMTPUTF8


def test_idn_domain_is_stored_in_its_ascii_form() -> None:
    # The domain can travel as punycode without SMTPUTF8; the Unicode form cannot be
    # written into a 7-bit To header nor given to RCPT TO on a server without SMTPUTF8.
    assert subs.normalize_email("User@Bücher.Example") == "user@xn--bcher-kva.example"
    assert subs.normalize_email("user@xn--bcher-kva.example") == "user@xn--bcher-kva.example"


def test_import_reports_bad_rows_with_line_numbers_and_imports_the_rest(
    newsroom: Newsroom,
) -> None:
    path = newsroom.root / "subs.csv"
    path.write_text(CSV, encoding="utf-8")
    code, out, err = _run(newsroom, "subscribers", "import", str(path))
    assert code == 1  # some rows rejected, the rest imported
    assert "added 2," in out and "rejected 5" in out
    assert f"{path}:3:" in err and "not-an-address" in err
    assert f"{path}:5:" in err and "unknown newsletter 'weekly'" in err
    assert f"{path}:6:" in err and "beat 'sports'" in err
    assert f"{path}:7:" in err and "line 2" in err  # duplicate of line 2
    assert f"{path}:8:" in err and "email is empty" in err
    store = newsroom.store()
    with store.read() as conn:
        rows = {r.email: r for r in subs.listing(conn, "daily")}
    assert set(rows) == {"ann@example.com", "bob@example.com"}
    assert rows["bob@example.com"].beats == ("technology", "world")  # configured order
    assert rows["ann@example.com"].beats == ()  # all beats
    # twice: nothing changes
    code, out, _ = _run(newsroom, "subscribers", "import", str(path))
    assert "added 0, updated 0, unchanged 2" in out
    with store.read() as conn:
        assert len(conn.execute(sa.select(s.subscriptions)).all()) == 2


def test_import_reports_an_oversized_field_and_imports_the_rest(newsroom: Newsroom) -> None:
    """A field over the csv module's limit (a stray quote swallowing the file, or a broken
    export) raised ``_csv.Error`` out of the command: a traceback, nothing imported."""
    path = newsroom.root / "subs.csv"
    path.write_text(
        "email,name,newsletter,beats\n"
        f'huge@example.com,"{"a" * 140_000}",daily,\n'
        "ok@example.com,Ok,daily,\n",
        "utf-8",
    )
    code, out, err = _run(newsroom, "subscribers", "import", str(path))
    assert code == 1, err
    assert f"{path}:2:" in err and "field larger than field limit" in err
    assert "added 1," in out and "rejected 1" in out
    with newsroom.store().read() as conn:
        assert [r.email for r in subs.listing(conn, "daily")] == ["ok@example.com"]


def test_import_never_resubscribes_someone_who_left(newsroom: Newsroom) -> None:
    path = newsroom.root / "subs.csv"
    path.write_text("email,name,newsletter,beats\nann@example.com,Ann,daily,\n", "utf-8")
    assert _run(newsroom, "subscribers", "import", str(path))[0] == 0
    code, out, _ = _run(newsroom, "subscribers", "remove", "ann@example.com")
    assert code == 0 and "unsubscribed" in out
    code, out, _ = _run(newsroom, "subscribers", "import", str(path))
    assert "kept unsubscribed 1" in out
    with newsroom.store().read() as conn:
        assert subs.active_recipients(conn, "daily") == []
    # an explicit add does re-subscribe
    code, out, _ = _run(newsroom, "subscribers", "add", "ann@example.com", "--beats", "world")
    assert code == 0
    with newsroom.store().read() as conn:
        assert [r[1:] for r in subs.active_recipients(conn, "daily")] == [
            ("ann@example.com", ("world",))
        ]


def test_add_rejects_unknown_beat_and_bad_header(newsroom: Newsroom) -> None:
    code, _, err = _run(newsroom, "subscribers", "add", "x@example.com", "--beats", "sports")
    assert code == 2 and "beat 'sports'" in err
    bad = newsroom.root / "bad.csv"
    bad.write_text("mail,who\nx@example.com,X\n", "utf-8")
    code, _, err = _run(newsroom, "subscribers", "import", str(bad))
    assert code == 2 and "bad.csv:1" in err and "header" in err


def test_list_shows_subscriptions(newsroom: Newsroom) -> None:
    cfg = newsroom.config()
    store = newsroom.store()
    with store.begin() as conn:
        subs.add(cfg, conn, "z@example.com", name="Zed", newsletters=["daily"], now=NOW)
    code, out, _ = _run(newsroom, "subscribers", "list")
    assert code == 0 and "z@example.com" in out and "1 subscriber(s)" in out
