"""An article's language: stated, else detected (pycld2), else the site's; and the writing
direction that follows from it (issue 14 item 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub import schema as s
from feedpub.language import article_language, detect, direction, normalize_tag
from feedpub.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "content"


def _body(name: str) -> str:
    text = (SAMPLE / name).read_text(encoding="utf-8")
    return text.split("---", 2)[2] if text.startswith("---") else text


@pytest.mark.parametrize(
    ("name", "lang"),
    [
        ("2026-11-11-jordan-desalination-project.md", "ar"),
        ("2026-10-30-kyiv-underground-schools.md", "uk"),  # not Russian
        ("2026-11-03-odesa-grain-ports.md", "uk"),
        ("2026-11-24-lviv-blood-donors.html", "uk"),
        ("2026-11-13-beirut-municipal-water.md", "en"),  # about Lebanon, written in English
        ("000_ba0e262c9b2a7c31.txt", "en"),
    ],
)
def test_sample_stories_are_detected(name: str, lang: str) -> None:
    assert detect(_body(name), html=True) == lang


def test_stated_language_wins_and_unsure_text_gives_none() -> None:
    assert article_language("en-GB", "Привіт", "", "<p>Це українська мова.</p>") == "en-GB"
    assert detect("") is None
    assert detect("ok") is None  # too short to tell: the site's language applies
    assert detect("12:30 — 45%") is None


def test_obsolete_codes_and_refused_characters() -> None:
    he = "שלום לכולם, זוהי כתבה בעברית על מזג האוויר בירושלים ובתל אביב השבוע."
    assert detect(he) == "he"  # CLD2 says "iw"
    # Control characters and lone surrogates make pycld2 raise; they are blanked first.
    noisy = "Hello\x07 world\ud800, this is a story\x9f written in plain English words."
    assert detect(noisy) == "en"


@pytest.mark.parametrize(
    ("tag", "dir_"),
    [
        ("ar", "rtl"), ("he", "rtl"), ("fa-IR", "rtl"), ("ur", "rtl"), ("yi", "rtl"),
        ("en", "ltr"), ("uk", "ltr"), ("si", "ltr"), (None, "ltr"),
        ("az-Arab", "rtl"), ("pa-Arab-PK", "rtl"), ("ar-Latn", "ltr"),
    ],
)  # fmt: skip
def test_direction_follows_the_script(tag: str | None, dir_: str) -> None:
    assert direction(tag) == dir_


def test_normalize_tag() -> None:
    assert normalize_tag("en_US") == "en-US"
    assert normalize_tag("not a tag") is None


def test_upgrade_detects_the_language_of_stored_articles(tmp_path: Path) -> None:
    """A store from before detection: migration step 3 fills in what it can."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        s.metadata.create_all(conn)
        s.meta.create(conn, checkfirst=True)
        conn.execute(sa.insert(s.meta), [{"key": "schema_version", "value": "1"}])
        row = {
            "source": "folder:content", "url": "https://x.example/a/", "slug": "a",
            "summary": "", "reading_minutes": 1, "beat": None, "tags": [],
            "published": datetime(2026, 11, 1, tzinfo=UTC),
            "updated": datetime(2026, 11, 1, tzinfo=UTC),
            "first_seen": datetime(2026, 11, 1, tzinfo=UTC),
            "status": "published", "content_hash": "", "changed_generation": 1,
        }  # fmt: skip
        conn.execute(
            sa.insert(s.articles),
            [
                {**row, "id": "a", "source_key": "a", "title": "الأردن يسابق الجفاف",
                 "content_html": "<p>" + _body("2026-11-11-jordan-desalination-project.md") + "</p>",
                 "language": None},
                {**row, "id": "b", "source_key": "b", "url": "https://x.example/b/",
                 "title": "Stated", "content_html": "<p>Це українська мова, сказано явно.</p>",
                 "language": "en"},
                {**row, "id": "c", "source_key": "c", "url": "https://x.example/c/",
                 "title": "?", "content_html": "<p>12</p>", "language": None},
            ],
        )  # fmt: skip
    engine.dispose()
    store = Store(url)
    with store.read() as conn:
        got = dict(conn.execute(sa.select(s.articles.c.id, s.articles.c.language)).all())
        version = conn.execute(
            sa.select(s.meta.c.value).where(s.meta.c.key == "schema_version")
        ).scalar_one()
    store.close()
    assert got == {"a": "ar", "b": "en", "c": None}
    assert int(version) == s.SCHEMA_VERSION
