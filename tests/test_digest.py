"""Digest editions end to end: real SQLite, real outbox files parsed with the email package.

What an edition holds and who gets it; the digest commands (a bad address option is a usage
error); user templates (a broken one is a configuration error, nothing is sent); the web
archive of editions, linked where the output folder is served; issue numbers that skip
skipped editions, the same in the mail, the archive and ``digest list``/``digest status``."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from lxml import html as lxml_html

from feedpub import schema as s
from feedpub.cli import main
from feedpub.digest import send_newsletter, write_preview
from feedpub.digest.tokens import PREFERENCES, UNSUBSCRIBE, verify_token
from feedpub.errors import ConfigError
from feedpub.store import Store
from feedpub.types import ArticleStatus
from tests.conftest import Newsroom
from tests.test_digest_support import (
    NOW,
    OUTBOX,
    _run,
    article,
    hours_ago,
    put,
    subscribe,
)


def _msgs(newsroom: Newsroom, folder: Path = OUTBOX) -> dict[str, EmailMessage]:
    out = {}
    for f in sorted((newsroom.root / folder).glob("*.eml")):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out[msg["To"].addresses[0].addr_spec] = msg
    return out


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def _table_counts(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in s.metadata.sorted_tables
        }


@pytest.fixture
def room(newsroom: Newsroom) -> tuple[Newsroom, Store]:
    store = newsroom.store()
    put(
        store,
        article(1, "world", hours_ago(2), title="World story", image=True),
        article(2, "technology", hours_ago(3), title="Tech story"),
        article(3, "russia-ukraine-war", hours_ago(4), title="War story"),
        article(9, "world", hours_ago(72), title="Old archive story"),
    )
    cfg = newsroom.config()
    subscribe(cfg, store, "all@example.com", name="Ann Àll")
    subscribe(cfg, store, "tech@example.com", beats="technology")
    subscribe(cfg, store, "climate@example.com", beats="russia-ukraine-war;world")
    return newsroom, store


def test_messages_have_every_header_and_parts_hold_the_edition(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    report = send_newsletter(cfg, store, "daily", now=NOW)
    assert (report.status, report.articles, report.recipients, report.sent) == ("sent", 3, 3, 3)
    msgs = _msgs(newsroom)
    assert set(msgs) == {"all@example.com", "tech@example.com", "climate@example.com"}
    msg = msgs["all@example.com"]
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["From"] == "Test Times <news@news.example>"
    assert msg["To"].addresses[0].display_name == "Ann Àll"
    assert msg["Subject"] == "Test Daily — 26 November 2026"
    assert msg["Date"].datetime == NOW
    assert re.fullmatch(r"<daily\.2026-11-26T0700Z\.\d+@news\.example>", msg["Message-ID"])
    assert msg["List-Id"] == "Test Daily <daily.news.example>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https.startswith("https://news.example/unsubscribe?t=")
    assert mailto.startswith("mailto:unsubscribe@news.example?subject=unsubscribe%20")
    token = parse_qs(urlsplit(https).query)["t"][0]
    sub_id, newsletter = verify_token(cfg, token, UNSUBSCRIBE) or (None, None)
    assert newsletter == "daily" and sub_id is not None
    # tampering: another subscriber id, another mac, another purpose
    tampered = f"{sub_id + 1}." + token.split(".", 1)[1]
    assert verify_token(cfg, tampered, UNSUBSCRIBE) is None
    assert verify_token(cfg, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert verify_token(cfg, token, PREFERENCES) is None

    text, html = _parts(msg)
    # beats in configured order, only those with something new
    assert text.index("Russia-Ukraine war") < text.index("Technology") < text.index("World")
    for title, url in (("World story", "story-1"), ("Tech story", "story-2")):
        assert title in text and title in html
        assert f"https://news.example/post/{url}/" in text
    assert "Old archive story" not in text  # first edition does not mail the archive
    # visible unsubscribe + preferences links, postal address, preview text
    doc = lxml_html.fromstring(html)
    hrefs = {a.text_content().strip(): a.get("href") for a in doc.iter("a")}
    assert hrefs["Unsubscribe"] == https
    assert verify_token(cfg, parse_qs(urlsplit(hrefs["Update your preferences"]).query)["t"][0],
                        PREFERENCES) == (sub_id, "daily")  # fmt: skip
    assert f"Unsubscribe: {https}" in text
    assert "1 Test Street, Testville" in text and "1 Test Street, Testville" in html
    assert "all@example.com subscribed" in html
    hidden = doc.xpath("//div[contains(@style,'display:none')]")
    assert hidden and "World story" in hidden[0].text_content()
    # no tracking pixels: the only image is the article's own
    assert [i.get("src") for i in doc.iter("img")] == ["https://news.example/img/1.jpg"]
    assert "<script" not in html.lower()
    assert len(html.encode()) < 102 * 1024

    # each subscriber sees only their beats
    t_text, _ = _parts(msgs["tech@example.com"])
    assert "Tech story" in t_text and "World story" not in t_text and "War story" not in t_text
    c_text, _ = _parts(msgs["climate@example.com"])
    assert "War story" in c_text and "World story" in c_text and "Tech story" not in c_text


def test_subscriber_whose_beats_have_nothing_new_gets_nothing(newsroom: Newsroom) -> None:
    store = newsroom.store()
    cfg = newsroom.config()
    put(store, article(1, "world", hours_ago(2)))
    subscribe(cfg, store, "world@example.com", beats="world")
    subscribe(cfg, store, "tech@example.com", beats="technology")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert r.recipients == 1
    assert set(_msgs(newsroom)) == {"world@example.com"}


def test_empty_edition_is_skipped_and_sends_nothing(newsroom: Newsroom) -> None:
    store = newsroom.store()
    cfg = newsroom.config()
    put(store, article(9, "world", hours_ago(50)))  # older than the lookback
    subscribe(cfg, store, "a@example.com")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert (r.status, r.articles, r.recipients, r.created) == ("skipped", 0, 0, True)
    assert not (newsroom.root / "outbox").exists()
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.deliveries)).scalar() == 0
    again = send_newsletter(cfg, store, "daily", now=NOW + timedelta(minutes=1))
    assert (again.status, again.created) == ("skipped", False)


def test_corrections_are_not_resent_and_retractions_left_out(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    send_newsletter(cfg, store, "daily", now=NOW)
    # Next day: a correction of story 1 (new title, even a later date), a retraction
    # before freezing, and one genuinely new article.
    day2 = NOW + timedelta(days=1)
    put(
        store,
        article(1, "world", day2 - timedelta(hours=1), title="World story (corrected)"),
        insert=False,
    )
    put(store, article(4, "world", day2 - timedelta(hours=2), title="Fresh story"))
    put(store, article(5, "world", day2 - timedelta(hours=3), title="Retracted story"))
    with store.begin() as conn:
        store.set_status(conn, article(5, "world", NOW).id, ArticleStatus.RETRACTED, 2)
    r = send_newsletter(cfg, store, "daily", now=day2)
    assert (r.number, r.articles, r.status) == (2, 1, "sent")
    msgs = _msgs(newsroom, Path("outbox/daily/2026-11-27T0700Z"))
    text, _ = _parts(msgs["all@example.com"])
    assert "Fresh story" in text
    assert "corrected" not in text and "Retracted story" not in text


def test_html_stays_under_gmail_clip_with_more_in_this_beat_link(newsroom: Newsroom) -> None:
    store = newsroom.store()
    cfg = newsroom.config()
    long = "A long summary sentence that keeps going. " * 7
    put(
        store,
        *[
            article(i, beat, hours_ago(1 + i / 100), summary=long, image=True)
            for i, beat in enumerate(["world", "technology", "russia-ukraine-war"] * 30)
        ],
    )
    subscribe(cfg, store, "a@example.com")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert r.articles == 90
    text, html = _parts(_msgs(newsroom)["a@example.com"])
    assert len(html.encode()) < 102 * 1024
    assert re.search(r"\d+ more in World →", html)
    assert re.search(r"\d+ more in World: https://news\.example/beats/world/", text)


def test_missing_token_key_is_a_config_error_and_freezes_nothing(
    room,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    newsroom, store = room
    monkeypatch.delenv("FEEDPUB_TEST_SECRET")
    with pytest.raises(ConfigError, match="FEEDPUB_TEST_SECRET"):
        send_newsletter(newsroom.config(), store, "daily", now=NOW)
    assert _table_counts(store)["editions"] == 0


def test_preview_changes_no_state_and_writes_files(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    before = _table_counts(store)
    p = write_preview(cfg, store, "daily", now=NOW, sample_email="tech@example.com")
    assert _table_counts(store) == before
    assert p.folder == newsroom.root / "preview" / "daily"
    assert "Tech story" in p.text.read_text() and "World story" not in p.text.read_text()
    assert "Tech story" in p.html.read_text()
    msg = email.message_from_bytes(p.eml.read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "tech@example.com"
    assert not (newsroom.root / "outbox").exists()


def test_cli_preview_exits_0_when_edition_would_be_empty(newsroom: Newsroom) -> None:
    r = CliRunner().invoke(
        main, ["--config", str(newsroom.config_path), "digest", "preview", "daily"]
    )
    assert r.exit_code == 0, r.output
    assert "would be skipped" in r.stdout
    assert str(newsroom.root / "preview" / "daily") in r.stdout
    assert (newsroom.root / "preview" / "daily" / "digest.eml").exists()


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


def test_cli_send_extra_and_list(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, _ = room
    args = ["--config", str(newsroom.config_path), "digest"]
    r1 = CliRunner().invoke(main, [*args, "send", "daily"])
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(main, [*args, "send", "daily", "--extra"])
    assert r2.exit_code == 0, r2.output
    # the extra edition has nothing new (everything went in the first): skipped
    assert "skipped" in r2.stdout
    r3 = CliRunner().invoke(main, [*args, "list"])
    assert r3.exit_code == 0 and "manual-" in r3.stdout and "sent" in r3.stdout


def test_user_templates_override_ours(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    folder = newsroom.root / "mytemplates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text(
        "CUSTOM {{ newsletter.title }} {{ unsubscribe_url }}\n", "utf-8"
    )
    newsroom.set_config(
        extra='[output]\ndir = "feeds"\ntemplates_dir = "mytemplates"\n',
        base=__import__("tests.conftest", fromlist=["BASE_CONFIG"]).BASE_CONFIG.replace(
            '[output]\ndir = "feeds"\nitems_per_feed = 5\n', ""
        ),
    )
    send_newsletter(newsroom.config(), store, "daily", now=NOW)
    text, html = _parts(_msgs(newsroom)["all@example.com"])
    assert text.startswith("CUSTOM Test Daily https://news.example/unsubscribe?t=")
    assert "World story" in html  # the MJML template is still ours


def test_broken_template_is_a_config_error_not_a_failure_of_every_row(
    newsroom: Newsroom,
) -> None:
    """A user template that fails to render (here an unknown attribute) was caught per
    message as a temporary failure: exit 0, every row "failed", and after max_attempts
    runs every row "bounced" (gave up) and the edition "sent" to nobody."""
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


def test_web_archive_page_index_and_atom(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    send_newsletter(cfg, store, "daily", now=NOW)
    folder = newsroom.root / "feeds" / "newsletters" / "daily"
    page = (folder / "2026-11-26T0700Z.html").read_text("utf-8")
    for title in ("World story", "Tech story", "War story"):
        assert title in page
    assert "?t=" not in page and "unsubscribe" not in page.lower()  # non-personalized
    index = (folder / "index.html").read_text("utf-8")
    assert "https://news.example/newsletters/daily/2026-11-26T0700Z.html" in index
    feed = feedparser.parse((folder / "atom.xml").read_bytes())
    assert not feed.bozo
    assert feed.version == "atom10"
    assert [e.link for e in feed.entries] == [
        "https://news.example/newsletters/daily/2026-11-26T0700Z.html"
    ]
    assert feed.entries[0].title == "Test Daily — 26 November 2026"
    before = (folder / "atom.xml").stat().st_mtime_ns
    send_newsletter(cfg, store, "daily", now=NOW)  # nothing changes: not rewritten
    assert (folder / "atom.xml").stat().st_mtime_ns == before


def test_archive_links_point_where_the_output_folder_is_served(newsroom: Newsroom) -> None:
    """The archive is written into the output folder, served at ``[output] base_url``
    (docs/web.md: ``https://news.example/feeds/``); "View in your browser" and the
    archive's index and Atom links pointed under ``site.base_url`` instead: 404."""
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


def test_skip_when_empty_off_sends_an_empty_edition(newsroom: Newsroom) -> None:
    newsroom.set_config(
        extra="",
        base=__import__("tests.conftest", fromlist=["BASE_CONFIG"]).BASE_CONFIG.replace(
            'postal_address = "1 Test Street, Testville"',
            'postal_address = "1 Test Street, Testville"\nskip_when_empty = false',
        ),
    )
    store = newsroom.store()
    cfg = newsroom.config()
    subscribe(cfg, store, "a@example.com")
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert (r.status, r.articles, r.sent) == ("sent", 0, 1)
    text, _ = _parts(_msgs(newsroom)["a@example.com"])
    assert "Nothing new since the last edition." in text


def test_archive_written_on_rerun_when_a_crash_lost_it(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    send_newsletter(cfg, store, "daily", now=NOW)
    page = newsroom.root / "feeds" / "newsletters" / "daily" / "2026-11-26T0700Z.html"
    page.unlink()
    r = send_newsletter(cfg, store, "daily", now=NOW)
    assert (r.status, r.sent, r.archive) == ("sent", 0, page)
    assert "World story" in page.read_text("utf-8")


def test_skipped_editions_leave_no_gap_in_issue_numbers(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    assert send_newsletter(cfg, store, "daily", now=NOW).number == 1
    day2 = NOW + timedelta(days=1)
    assert send_newsletter(cfg, store, "daily", now=day2).status == "skipped"
    day3 = NOW + timedelta(days=2)
    put(store, article(7, "world", day3 - timedelta(hours=1), title="Day three"))
    r = send_newsletter(cfg, store, "daily", now=day3)
    assert r.status == "sent"
    text, _ = _parts(_msgs(newsroom, Path("outbox/daily/2026-11-28T0700Z"))["all@example.com"])
    assert "· No. 2" in text
    index = (newsroom.root / "feeds/newsletters/daily/index.html").read_text("utf-8")
    assert "No. 2 ·" in index and "No. 1 ·" in index and "No. 3" not in index


def test_operator_views_use_the_number_readers_see(newsroom: Newsroom) -> None:
    """Readers' "No. N" skips skipped editions (issue_number); ``digest send``, ``digest
    list`` and ``digest status daily/N`` used the stored sequence that counts them, so
    after one empty day the mail said No. 2 while the tools called it No. 3, and
    ``digest status daily/2`` showed the skipped edition."""
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


def test_unsubscribe_token_command_honours_genuine_tokens_only(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    send_newsletter(cfg, store, "daily", now=NOW)
    msg = _msgs(newsroom)["tech@example.com"]
    mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])[1]
    subject = parse_qs(urlsplit(mailto).query)["subject"][0]  # "unsubscribe TOKEN"
    args = ["--config", str(newsroom.config_path), "subscribers", "unsubscribe-token"]
    forged = subject[:-1] + ("A" if subject[-1] != "A" else "B")
    bad = CliRunner().invoke(main, [*args, forged])
    assert bad.exit_code == 2 and "not a valid unsubscribe token" in bad.stderr
    ok = CliRunner().invoke(main, [*args, subject])
    assert ok.exit_code == 0 and "unsubscribed" in ok.stdout
    with store.read() as conn:
        from feedpub.digest import subscribers as subs

        emails = [r[1] for r in subs.active_recipients(conn, "daily")]
    assert "tech@example.com" not in emails and "all@example.com" in emails


def test_late_collected_story_goes_into_the_next_edition(room) -> None:  # type: ignore[no-untyped-def]
    newsroom, store = room
    cfg = newsroom.config()
    send_newsletter(cfg, store, "daily", now=NOW)
    # Collected 5 minutes after the edition froze, though dated 10 minutes before it.
    put(
        store,
        article(6, "world", NOW - timedelta(minutes=10), title="Late story"),
        first_seen=NOW + timedelta(minutes=5),
    )
    # A new source backfilling a month-old story: never mailed.
    put(
        store,
        article(7, "world", NOW - timedelta(days=30), title="Backfilled story"),
        first_seen=NOW + timedelta(minutes=5),
    )
    r = send_newsletter(cfg, store, "daily", now=NOW + timedelta(days=1))
    assert (r.articles, r.status) == (1, "sent")
    text, _ = _parts(_msgs(newsroom, Path("outbox/daily/2026-11-27T0700Z"))["all@example.com"])
    assert "Late story" in text and "Backfilled story" not in text
