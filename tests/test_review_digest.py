"""Review findings for digests, delivery and the web endpoints: each test pins a bug that
was found by running the real CLI against the sample newsroom, and stays as a guard."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.clock import running_from
from feedpub.digest import send_newsletter
from feedpub.digest import subscribers as subs
from feedpub.digest.tokens import UNSUBSCRIBE, Tokens
from feedpub.web.app import WebApp
from tests.conftest import Newsroom
from tests.test_digest_support import NOW, article, hours_ago, put, subscribe

OUTBOX = Path("outbox/daily/2026-11-26T0700Z")


def _run(newsroom: Newsroom, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *args])
    return r.exit_code, r.stdout, r.stderr


# ---- IDN domains -------------------------------------------------------------------------
def test_idn_domain_is_stored_in_its_ascii_form() -> None:
    # The domain can travel as punycode without SMTPUTF8; the Unicode form cannot be
    # written into a 7-bit To header nor given to RCPT TO on a server without SMTPUTF8.
    assert subs.normalize_email("User@Bücher.Example") == "user@xn--bcher-kva.example"
    assert subs.normalize_email("user@xn--bcher-kva.example") == "user@xn--bcher-kva.example"


def test_subscriber_with_idn_domain_gets_the_edition(newsroom: Newsroom) -> None:
    store = newsroom.store()
    cfg = newsroom.config()
    put(store, article(1, "world", hours_ago(2), title="World story"))
    csv = newsroom.root / "subs.csv"
    csv.write_text("email,name,newsletter,beats\nuser@bücher.example,IDN Reader,daily,\n", "utf-8")
    assert _run(newsroom, "subscribers", "import", str(csv))[0] == 0
    report = send_newsletter(cfg, store, "daily", now=NOW)
    assert (report.status, report.sent, report.failed) == ("sent", 1, 0)
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    data = eml.read_bytes()
    assert data.isascii()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"].addresses[0].addr_spec == "user@xn--bcher-kva.example"


# ---- tokens ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        "².daily.AAAAAAAAAAAAAAAAAAAAAA",  # a Unicode digit int() refuses
        "1.daily.ÀAAAAAAAAAAAAAAAAAAAAA",  # a non-ASCII mac (compare_digest refuses str)
        "1.dailé.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_token_with_non_ascii_characters_is_invalid_not_a_crash(token: str) -> None:
    assert Tokens(b"k").verify(UNSUBSCRIBE, token) is None


def test_one_click_with_non_ascii_token_gets_400(newsroom: Newsroom) -> None:
    import io

    cfg = newsroom.config()
    app = WebApp(cfg, newsroom.store(), tokens=Tokens(b"k"), clock=running_from(NOW))
    body = b"List-Unsubscribe=One-Click"
    for raw in ("%C2%B2.daily.abc", "1.daily.%C3%80bc"):
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/unsubscribe",
            "QUERY_STRING": f"t={raw}",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        app(environ, lambda s, h, status=status: status.append(s))
        assert status[0].startswith("400"), raw


def test_unsubscribe_token_command_rejects_non_ascii_token(newsroom: Newsroom) -> None:
    store = newsroom.store()
    subscribe(newsroom.config(), store, "a@example.com")
    code, _, err = _run(newsroom, "subscribers", "unsubscribe-token", "unsubscribe ².daily.abc")
    assert code == 2 and "not a valid unsubscribe token" in err


# ---- extra (manual) editions resume --------------------------------------------------------
def test_interrupted_extra_edition_is_resumed_by_the_next_extra_send(newsroom: Newsroom) -> None:
    """A manual edition's key is the time of the send; before the fix a rerun of
    ``digest send --extra`` froze a new (empty, skipped) edition instead, and the paused
    or crashed one was never finished: its queued subscribers were lost."""
    from datetime import timedelta

    import sqlalchemy as sa

    from feedpub import schema as s
    from feedpub.delivery.outbox import OutboxMessenger
    from feedpub.errors import ServerUnavailableError
    from tests.test_digest_delivery import Recorder

    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)))
    for i in range(3):
        subscribe(cfg, store, f"reader{i}@example.com")
    rec = Recorder(OutboxMessenger(newsroom.root / "outbox", store))
    rec.fail["reader1@example.com"] = ServerUnavailableError("relay down")
    first = send_newsletter(cfg, store, "daily", now=NOW, extra=True, messenger=rec)
    assert first.status == "paused" and first.sent == 1
    rec.fail.clear()
    again = send_newsletter(
        cfg, store, "daily", now=NOW + timedelta(minutes=5), extra=True, messenger=rec
    )
    assert (again.slot, again.created, again.status) == (first.slot, False, "sent")
    assert sorted(m.recipient for m in rec.sent) == [f"reader{i}@example.com" for i in range(3)]
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.editions)).scalar_one() == 1
    # finished: the next --extra is a new edition (nothing new here: skipped)
    third = send_newsletter(
        cfg, store, "daily", now=NOW + timedelta(minutes=9), extra=True, messenger=rec
    )
    assert third.created and third.slot != first.slot and third.status == "skipped"


# ---- web archive URLs ------------------------------------------------------------------------
def test_archive_links_point_where_the_output_folder_is_served(newsroom: Newsroom) -> None:
    """The archive is written into the output folder, served at ``[output] base_url``
    (docs/web.md: ``https://news.example/feeds/``); "View in your browser" and the
    archive's index and Atom links pointed under ``site.base_url`` instead: 404."""
    import re

    from lxml import etree

    from tests.conftest import BASE_CONFIG

    newsroom.set_config(
        base=BASE_CONFIG.replace(
            "items_per_feed = 5", 'items_per_feed = 5\nbase_url = "https://news.example/feeds/"'
        )
    )
    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2), title="World story"))
    subscribe(cfg, store, "a@example.com")
    report = send_newsletter(cfg, store, "daily", now=NOW)
    assert report.status == "sent" and report.archive is not None
    rel = report.archive.relative_to(cfg.output_dir).as_posix()
    page_url = "https://news.example/feeds/" + rel
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    for ctype in ("plain", "html"):
        part = msg.get_body((ctype,))
        assert part is not None
        body = str(part.get_content())
        assert page_url in body
        assert not re.search(r"https://news\.example/newsletters/", body)
    atom = etree.parse(str(cfg.output_dir / "newsletters/daily/atom.xml"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert atom.xpath("/a:feed/a:link[@rel='self']/@href", namespaces=ns) == [
        "https://news.example/feeds/newsletters/daily/atom.xml"
    ]
    assert atom.xpath("/a:feed/a:entry/a:link/@href", namespaces=ns) == [page_url]
    index = (cfg.output_dir / "newsletters/daily/index.html").read_text("utf-8")
    assert f'href="{page_url}"' in index


# ---- CSV import ----------------------------------------------------------------------------
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


# ---- edition numbers -------------------------------------------------------------------------
def test_operator_views_use_the_number_readers_see(newsroom: Newsroom) -> None:
    """Readers' "No. N" skips skipped editions (issue_number); ``digest send``, ``digest
    list`` and ``digest status daily/N`` used the stored sequence that counts them, so
    after one empty day the mail said No. 2 while the tools called it No. 3, and
    ``digest status daily/2`` showed the skipped edition."""
    from datetime import timedelta

    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "a@example.com")
    assert send_newsletter(cfg, store, "daily", now=NOW).number == 1
    skipped = send_newsletter(cfg, store, "daily", now=NOW + timedelta(days=1))
    assert skipped.status == "skipped"
    day3 = NOW + timedelta(days=2)
    put(store, article(2, "world", day3 - timedelta(hours=1)))
    r = send_newsletter(cfg, store, "daily", now=day3)
    assert (r.status, r.number) == ("sent", 2)
    (eml,) = (newsroom.root / "outbox/daily/2026-11-28T0700Z").glob("*.eml")
    assert b"No. 2" in eml.read_bytes()
    code, out, _ = _run(newsroom, "digest", "list")
    assert code == 0
    lines = out.splitlines()
    assert any("No. 2" in x and "2026-11-28T07:00Z" in x for x in lines), out
    assert any("No. 1" in x and "2026-11-26T07:00Z" in x for x in lines), out
    assert not any("No. 3" in x for x in lines), out
    code, out, _ = _run(newsroom, "digest", "status", "daily/2")
    assert code == 0 and "2026-11-28T07:00Z" in out and "No. 2" in out, out
    code, out, _ = _run(newsroom, "digest", "status", "daily/2026-11-27T07:00Z")
    assert code == 0 and "skipped" in out and "No. " not in out, out


# ---- broken user templates -------------------------------------------------------------------
def test_broken_template_is_a_config_error_not_a_failure_of_every_row(
    newsroom: Newsroom,
) -> None:
    """A user template that fails to render (here an unknown attribute) was caught per
    message as a temporary failure: exit 0, every row "failed", and after max_attempts
    runs every row "bounced" (gave up) and the edition "sent" to nobody."""
    import sqlalchemy as sa

    from feedpub import schema as s
    from feedpub.digest.render import TemplateError
    from tests.conftest import BASE_CONFIG

    folder = newsroom.root / "mytemplates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text("{{ newsletter.no_such_key }}\n", "utf-8")
    newsroom.set_config(
        base=BASE_CONFIG.replace(
            "items_per_feed = 5", 'items_per_feed = 5\ntemplates_dir = "mytemplates"'
        )
    )
    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "a@example.com")
    subscribe(cfg, store, "b@example.com", beats="world")
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2"):
        send_newsletter(cfg, store, "daily", now=NOW)
    with store.read() as conn:
        rows = conn.execute(sa.select(s.deliveries.c.status, s.deliveries.c.attempts)).all()
    assert sorted(tuple(r) for r in rows) == [("queued", 0), ("queued", 0)]
    # fixed: the same edition goes out to both
    (folder / "digest.txt.j2").write_text("{{ newsletter.title }}\n", "utf-8")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert (r.created, r.status, r.sent) == (False, "sent", 2)


# ---- To header folding ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "Dr. Jonathan Alexander Montgomery-Fitzgerald III, Esq., Department of Long Names",
        "Ann Reader",
        "A" * 120,  # no space to fold at: left long (still far under 998)
        "Ann " * 37 + "Z",
    ],
)
def test_long_ascii_to_header_is_folded(name: str) -> None:
    """RFC 5322 §2.1.1: header lines SHOULD stay within 78 characters; a long ASCII
    display name gave a single To line of 125+ characters."""
    from feedpub.digest.compose import PreparedMessage, Recipient
    from tests.test_digest_compose import COMPOSER, EDITION, HTML, TEXT

    prepared = PreparedMessage.build(EDITION, TEXT, HTML, "fp-b")
    addr = "jonathan.montgomery@example.com"
    data = COMPOSER.compose(prepared, Recipient(3, addr, name))
    head = data.split(b"\r\n\r\n", 1)[0]
    to_block = head[head.index(b"\r\nTo: ") + 2 :]
    to_lines = [to_block.split(b"\r\n")[0]]
    for line in to_block.split(b"\r\n")[1:]:
        if not line.startswith(b" "):
            break
        to_lines.append(line)
    if " " in name:
        assert all(len(x) <= 78 for x in to_lines), to_lines
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    (a,) = msg["To"].addresses
    assert (a.display_name, a.addr_spec) == (name, addr)


# ---- bad addresses on the digest commands ------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("digest", "test", "daily", "--to", "Ann <ann@example.com>"),
        ("digest", "preview", "daily", "--subscriber", "not-an-email"),
    ],
)
def test_bad_address_option_is_a_usage_error_not_a_traceback(
    newsroom: Newsroom, args: tuple[str, ...]
) -> None:
    code, _, err = _run(newsroom, *args)
    assert code == 2, err
    assert "not a valid email address" in err and "Traceback" not in err


# ---- control characters in names ---------------------------------------------------------------
def test_control_characters_never_reach_a_stored_name_or_the_to_header(
    newsroom: Newsroom,
) -> None:
    """clean_name removed only NUL: an ESC or BEL from a CSV went raw into the To header
    (RFC 5322 §3.2.4 qtext has no control characters) and into the operator's terminal
    through `subscribers list`. Format characters such as ZWJ (Sinhala) are kept."""
    assert subs.clean_name("Ann\x1b[31m Red\x07\x7f\x85 x") == "Ann[31m Red x"
    assert subs.clean_name("ශ්\u200dරී") == "ශ්\u200dරී"
    store = newsroom.store()
    cfg = newsroom.config()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "a@example.com", name="Ann\x1b]0;pwned\x07 Reader")
    assert send_newsletter(cfg, store, "daily", now=NOW).sent == 1
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    data = eml.read_bytes()
    assert not any((b < 32 and b not in (13, 10)) or b == 127 for b in data)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"].addresses[0].display_name == "Ann]0;pwned Reader"


# ---- unsubscribe-token accepts what its help promises ---------------------------------------------
def test_unsubscribe_token_command_accepts_the_url_and_the_mailto(newsroom: Newsroom) -> None:
    """Its help says "(from a List-Unsubscribe mailto subject or URL)", but a pasted URL
    or mailto link (or a "Re:" subject) was refused as "not a valid unsubscribe token"."""
    from feedpub.digest.tokens import LinkMaker, tokens_for

    cfg = newsroom.config()
    store = newsroom.store()
    links = LinkMaker(cfg, "daily", tokens_for(cfg))
    forms = []
    for email_ in ("a@example.com", "b@example.com", "c@example.com"):
        sid = subscribe(cfg, store, email_)
        https, mailto = (v.strip(" <>") for v in links.list_unsubscribe(sid).split(","))
        forms.append((email_, https, mailto))
    cases = [forms[0][1], forms[1][2], "Re: unsubscribe " + forms[2][1].split("t=")[1]]
    for value in cases:
        code, out, err = _run(newsroom, "subscribers", "unsubscribe-token", value)
        assert code == 0 and ": unsubscribed" in out, (value, err)
    with store.read() as conn:
        assert subs.active_recipients(conn, "daily") == []
    code, _, err = _run(newsroom, "subscribers", "unsubscribe-token", forms[0][1] + "x")
    assert code == 2 and "not a valid unsubscribe token" in err


# ---- an internationalized sender domain ------------------------------------------------------------
def test_idn_from_domain_is_written_in_its_ascii_form(newsroom: Newsroom) -> None:
    """``from = "Новини <news@новини.укр>"``: the From header came out as
    ``news@=?utf-8?b?...?=`` (an encoded word where a domain must be) and the Message-IDs
    (frozen with the Unicode domain) could not be encoded: every row failed."""
    from tests.conftest import BASE_CONFIG

    newsroom.set_config(
        base=BASE_CONFIG.replace(
            'from = "Test Times <news@news.example>"', 'from = "Новини <news@новини.укр>"'
        )
    )
    cfg = newsroom.config()
    store = newsroom.store()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "a@example.com")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert (r.status, r.sent, r.failed) == ("sent", 1, 0)
    (eml,) = (newsroom.root / OUTBOX).glob("*.eml")
    data = eml.read_bytes()
    assert data.isascii()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Новини", "news@xn--b1amarcd.xn--j1amh")
    assert msg["Message-ID"].endswith("@xn--b1amarcd.xn--j1amh>")
    assert msg["List-Id"].endswith("<daily.xn--b1amarcd.xn--j1amh>")
    assert "mailto:unsubscribe@xn--b1amarcd.xn--j1amh?" in msg["List-Unsubscribe"]


# ---- retractions after the freeze ------------------------------------------------------------
def test_a_story_retracted_while_the_edition_was_paused_is_not_sent(newsroom: Newsroom) -> None:
    """The relay was down when the edition froze; an editor then retracts a story. The
    resumed edition must not mail it, and a reader whose only story it was gets nothing."""
    import email
    import email.policy

    from feedpub.delivery.outbox import OutboxMessenger
    from feedpub.errors import ServerUnavailableError
    from feedpub.types import ArticleStatus
    from tests.test_digest_delivery import Recorder

    cfg = newsroom.config()
    store = newsroom.store()
    keep = article(1, "world", hours_ago(2), title="Kept story")
    gone = article(2, "technology", hours_ago(3), title="Retracted story")
    put(store, keep, gone)
    subscribe(cfg, store, "all@example.com")
    subscribe(cfg, store, "tech@example.com", beats="technology")
    rec = Recorder(OutboxMessenger(newsroom.root / "outbox", store))
    for who in ("all@example.com", "tech@example.com"):
        rec.fail[who] = ServerUnavailableError("relay down")
    first = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert first.status == "paused" and first.sent == 0
    with store.begin() as conn:
        store.set_status(conn, gone.id, ArticleStatus.RETRACTED, 2)
    rec.fail.clear()
    again = send_newsletter(cfg, store, "daily", now=NOW, messenger=rec)
    assert again.status == "sent"
    assert [m.recipient for m in rec.sent] == ["all@example.com"]
    msg = email.message_from_bytes(rec.sent[0].data, policy=email.policy.default)
    text = msg.get_body(("plain",))
    assert text is not None
    body = str(text.get_content())  # type: ignore[attr-defined]
    assert "Kept story" in body and "Retracted story" not in body
    with store.read() as conn:
        import sqlalchemy as sa

        from feedpub import schema as s

        status = dict(conn.execute(sa.select(s.deliveries.c.email, s.deliveries.c.status)).all())
    assert status == {"all@example.com": "sent", "tech@example.com": "cancelled"}
