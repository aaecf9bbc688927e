"""Suppression (checked at import, add, sign-up and send), data export and erasure, and
bounce/complaint rates in `feedpub status` and `digest status`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from feedpub import schema as s
from feedpub.bounces.ingest import ingest
from feedpub.bounces.sources import RawMessage
from feedpub.cli import main
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.store import Store
from tests.conftest import Newsroom
from tests.test_bounces_corpus import LATER, READER, Room, room  # noqa: F401
from tests.test_digest_support import NOW, article, hours_ago, put


def _cli(room_: Room, *args: str, stdout: bool = False) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["--config", str(room_.config.path), *args])
    return r.exit_code, r.stdout if stdout else " ".join(r.output.split())


def test_suppressed_addresses_are_skipped_at_import_add_and_send(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    cfg = newsroom.config()
    store = Store(cfg.store_url)
    put(store, article(1, "world", hours_ago(2)))
    path = str(newsroom.config_path)
    runner = CliRunner()
    assert runner.invoke(main, ["--config", path, "suppression", "add", "Spam@Example.org", "--note", "asked by phone"]).exit_code == 0  # fmt: skip
    csv = tmp_path / "s.csv"
    csv.write_text(
        "email,name,newsletter,beats\nspam@example.org,,daily,\nok@example.org,,daily,\n"
    )
    r = runner.invoke(main, ["--config", path, "subscribers", "import", str(csv)])
    assert "added 1" in r.output and "kept suppressed 1" in r.output
    r = runner.invoke(main, ["--config", path, "subscribers", "add", "spam@example.org"])
    assert r.exit_code == 2 and "suppression list (manual)" in " ".join(r.output.split())
    # suppressed after subscribing: the edition freezes without them
    with store.begin() as conn:
        subs.add(cfg, conn, "late@example.org", newsletters=["daily"], now=NOW)
    runner.invoke(main, ["--config", path, "suppression", "add", "late@example.org"])
    report = send_newsletter(cfg, store, "daily", now=NOW)
    assert report.recipients == 1
    listed = runner.invoke(main, ["--config", path, "suppression", "list"])
    assert "spam@example.org  manual" in listed.output and "asked by phone" in listed.output
    assert runner.invoke(main, ["--config", path, "suppression", "remove", "spam@example.org"]).exit_code == 0  # fmt: skip
    assert runner.invoke(main, ["--config", path, "suppression", "remove", "spam@example.org"]).exit_code == 2  # fmt: skip
    store.close()


def test_reimport_never_resubscribes_unless_told(newsroom: Newsroom, tmp_path: Path) -> None:
    path = str(newsroom.config_path)
    runner = CliRunner()
    csv = tmp_path / "s.csv"
    csv.write_text("email,name,newsletter,beats\na@example.org,,daily,\n")
    runner.invoke(main, ["--config", path, "subscribers", "import", str(csv)])
    runner.invoke(main, ["--config", path, "subscribers", "remove", "a@example.org"])
    r = runner.invoke(main, ["--config", path, "subscribers", "import", str(csv)])
    assert "kept unsubscribed 1" in r.output
    r = runner.invoke(main, ["--config", path, "subscribers", "import", str(csv), "--resubscribe"])
    assert "updated 1" in r.output
    store = newsroom.store()
    with store.read() as conn:
        [row] = subs.listing(conn)
    assert (row.status, row.subscription_status) == ("active", "active")
    store.close()


def test_export_holds_everything_and_erase_keeps_only_the_hash_and_counts(
    room: Room,  # noqa: F811
    newsroom: Newsroom,
) -> None:
    ingest(
        room.config,
        room.store,
        [RawMessage("x", room.message("gmail_full.eml"))],
        source="t",
        now=LATER,
    )
    code, _ = _cli(room, "subscribers", "export", READER, "--out", str(newsroom.root / "x.json"))
    assert code == 0
    data = json.loads((newsroom.root / "x.json").read_text())
    assert data["email"] == READER and data["subscriber"]["status"] == "active"
    assert [x["newsletter"] for x in data["subscriptions"]] == ["daily"]
    assert data["deliveries"][0]["status"] == "sent" and data["deliveries"][0]["email"] == READER
    assert data["bounces"][0]["kind"] == "soft" and READER in data["bounces"][0]["raw"]
    outbox = next((newsroom.root / "outbox").rglob(f"{room.sid}.eml"))
    assert outbox.exists()

    code, out = _cli(room, "subscribers", "erase", READER, "--yes")
    assert code == 0, out
    assert "1 ledger row(s)" in out and "1 bounce message(s) anonymized" in out
    assert not outbox.exists()
    # nothing left names the person...
    with room.store.read() as conn:
        for table in (s.subscribers, s.subscriptions, s.deliveries, s.bounces, s.signups,
                      s.mail_queue, s.suppressions):  # fmt: skip
            for r in conn.execute(sa.select(table)):
                assert READER not in repr(tuple(r)), (table.name, r)
        # ...but the counts stay: the edition's ledger row and the bounce's kind
        assert conn.execute(sa.select(s.deliveries.c.status).where(s.deliveries.c.subscriber_id == room.sid)).scalar_one() == "sent"  # fmt: skip
        assert conn.execute(sa.select(s.bounces.c.kind)).scalar_one() == "soft"
        assert conn.execute(sa.select(s.suppressions.c.reason)).scalar_one() == "erased"
        logged = conn.execute(sa.select(s.runs.c.summary).where(s.runs.c.kind == "data-rights")).scalars().all()  # fmt: skip
    assert [x["action"] for x in logged] == ["export", "erase"]
    assert READER not in json.dumps(logged)
    # the erased address cannot come back through an import, and export says only that
    code, out = _cli(room, "subscribers", "add", READER)
    assert code == 2 and "suppression list (erased)" in out
    code, out = _cli(room, "subscribers", "export", READER, stdout=True)
    assert code == 0 and json.loads(out)["suppression"]["reason"] == "erased"
    code, out = _cli(room, "subscribers", "list")
    assert "erased" not in out and "other@example.org" in out
    # a late bounce for the erased subscriber's row changes nothing
    r = ingest(room.config, room.store, [RawMessage("y", room.message("postfix_hard.eml"))], source="t", now=LATER)  # fmt: skip
    assert dict(r.actions) == {"ignored": 1}


def test_export_of_an_unknown_address_is_a_usage_error(room: Room) -> None:  # noqa: F811
    code, out = _cli(room, "subscribers", "export", "nobody@example.org")
    assert code == 2 and "nothing is held about nobody@example.org" in out


def test_rates_and_warnings_in_status_and_digest_status(
    room: Room,  # noqa: F811
    newsroom: Newsroom,
) -> None:
    # `feedpub status` reads the wall clock: a window wide enough for any test date
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(text + '\n[bounces]\nrate_window = "P36500D"\n')
    ingest(room.config, room.store, [RawMessage("c", room.message("arf_complaint.eml"))], source="t", now=LATER)  # fmt: skip
    code, out = _cli(room, "status", "--json", stdout=True)
    assert code == 0
    st = json.loads(out)
    daily = st["health"]["newsletters"]["daily"]
    assert (daily["delivered"], daily["complaints"], daily["complaint_rate"]) == (2, 1, 0.5)
    assert st["health"]["editions"][str(room.edition_id)]["complaints"] == 1
    assert any("complaint rate 50.00%" in w and "Gmail and Yahoo" in w for w in st["warnings"])
    code, out = _cli(room, "status")
    assert "list health" in out and "warning" in out
    code, out = _cli(room, "digest", "status", "daily")
    assert "complaints 1 (50.00%) of 2 delivered" in out
    assert "above 0.3%" in out
    # an undone complaint no longer counts
    with room.store.begin() as conn:
        from feedpub.bounces.review import undo

        undo(conn, 1, LATER)
    st = json.loads(_cli(room, "status", "--json", stdout=True)[1])
    assert st["health"]["newsletters"]["daily"]["complaints"] == 0
    assert not any("complaint rate" in w for w in st["warnings"])


def test_a_window_without_editions_has_no_rates(newsroom: Newsroom) -> None:
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status", "--json"])
    st = json.loads(r.output)
    assert st["health"]["newsletters"]["daily"]["delivered"] == 0
    assert st["health"]["newsletters"]["daily"]["bounce_rate"] == 0.0
    _ = timedelta  # rates are per rate_window (default 30 days)


def test_the_preferences_page_cannot_resubscribe_a_suppressed_address(room: Room) -> None:  # noqa: F811
    import threading

    import httpx

    from feedpub.clock import fixed
    from feedpub.digest.tokens import LinkMaker, tokens_for
    from feedpub.web.server import make_server

    ingest(room.config, room.store, [RawMessage("c", room.message("arf_complaint.eml"))], source="t", now=LATER)  # fmt: skip
    server = make_server(room.config, room.store, "127.0.0.1", 0, clock=fixed(LATER))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = LinkMaker(room.config, "daily", tokens_for(room.config)).preferences_url(room.sid)
        local = f"http://127.0.0.1:{server.server_port}/preferences?{url.split('?', 1)[1]}"
        r = httpx.post(local, data={"beat": "world", "resubscribe": "1"})
        assert r.status_code == 200 and "do-not-mail list" in r.text
        assert room.state()[:3] == ("unsubscribed", "unsubscribed", True)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
