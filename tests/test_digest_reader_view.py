"""The digest's article blocks as readers get them (issue 14 items 1 and 4): each block
carries its story's lang and dir in the MJML source and the HTML; the lead image's alt is
its own text (never the headline), with width and height that fit the column; the "more
in BEAT" link points at the beat's page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lxml import html as lxml_html

from feedpub.digest.build import EditionBuilder, EditionInfo, image_context
from feedpub.digest.render import Renderer
from feedpub.types import Image
from tests.conftest import Newsroom
from tests.test_digest_support import NOW, article, hours_ago

ARABIC_TITLE = "الأردن يسابق الجفاف بمشروع تحلية مياه العقبة"


def _builder(newsroom: Newsroom, extra: str = "") -> EditionBuilder:
    newsroom.set_config(extra)
    config = newsroom.config()
    ar = dataclasses.replace(
        article(1, "world", hours_ago(2), title=ARABIC_TITLE, summary="يدخل المشروع مرحلة البناء."),
        language="ar",
        image=Image(
            "https://news.example/img/aqaba.jpg",
            "image/jpeg",
            2000,
            "Desalination plant",
            1600,
            900,
        ),
    )
    uk = dataclasses.replace(
        article(2, "world", hours_ago(3), title="Черги донорів у Львові"), language="uk"
    )
    en = article(3, "technology", hours_ago(4), image=True)  # no alt, no size
    info = EditionInfo(0, "daily", "2026-11-26T07:00Z", "2026-11-26T0700Z", 1, NOW, NOW)
    nl = config.newsletter("daily")
    return EditionBuilder(
        config, Renderer(config), nl, info, [("technology", [en]), ("world", [ar, uk])], None
    )


def test_article_blocks_carry_their_language_and_direction(newsroom: Newsroom) -> None:
    b = _builder(newsroom)
    ctx = b.context(["technology", "world"], 10, personal=False)
    mjml = b.renderer.mjml(ctx)
    assert 'lang="ar" dir="rtl"' in mjml and 'lang="uk" dir="ltr"' in mjml
    assert '<mjml lang="en" dir="ltr">' in mjml
    doc = lxml_html.fromstring(b.renderer.html(ctx))
    assert doc.get("lang") == "en" and doc.get("dir") == "ltr"  # not "auto"
    blocks = {d.get("lang"): d for d in doc.xpath("//div[@class='article']")}
    assert set(blocks) == {"ar", "uk", "en"}
    ar = blocks["ar"]
    assert ar.get("dir") == "rtl" and "text-align:right" in ar.get("style", "")
    assert ar.xpath("string(.//a)") == ARABIC_TITLE
    # The byline is ours, in the site's language and direction, inside the RTL block.
    (byline,) = ar.xpath("./div[@lang='en']")
    assert byline.get("dir") == "ltr" and byline.text_content().startswith("By ")
    assert blocks["uk"].get("dir") == "ltr" and "text-align:left" in blocks["uk"].get("style", "")


def test_lead_image_alt_and_size(newsroom: Newsroom) -> None:
    b = _builder(newsroom)
    doc = lxml_html.fromstring(b.render(["technology", "world"], personal=False).html)
    imgs = {i.get("src"): i for i in doc.xpath("//img")}
    aqaba = imgs["https://news.example/img/aqaba.jpg"]
    assert aqaba.get("alt") == "Desalination plant"
    assert (aqaba.get("width"), aqaba.get("height")) == ("552", "310")  # 1600x900 in 552 px
    assert "max-width:552px" in aqaba.get("style", "") and "height:auto" in aqaba.get("style", "")
    plain = imgs["https://news.example/img/3.jpg"]
    # No alt in the front matter: empty, never the headline (shown twice when blocked).
    assert plain.get("alt") == "" and plain.get("width") == "552" and plain.get("height") is None
    # "N more in BEAT →" and the section headings go to the beat's page.
    assert "https://news.example/beats/world/" in {a.get("href") for a in doc.xpath("//a")}


def test_image_size_never_exceeds_the_column_nor_upscales() -> None:
    small = image_context(Image("https://x/a.jpg", width=300, height=200))
    assert small is not None and (small["width"], small["height"]) == (300, 200)
    wide = image_context(Image("https://x/a.jpg", width=5520, height=100))
    assert wide is not None and (wide["width"], wide["height"]) == (552, 10)
    assert image_context(None) is None


def test_more_link_follows_a_beat_url(newsroom: Newsroom, tmp_path: Path) -> None:
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('title = "World"\n', 'title = "World"\nurl = "https://cms.example/world/"\n'),
        encoding="utf-8",
    )
    config = newsroom.config()
    info = EditionInfo(0, "daily", "2026-11-26T07:00Z", "2026-11-26T0700Z", 1, NOW, NOW)
    arts = [article(n, "world", hours_ago(n)) for n in range(1, 5)]
    b = EditionBuilder(
        config, Renderer(config), config.newsletter("daily"), info, [("world", arts)], None
    )
    ctx = b.context(["world"], 2, personal=False)
    assert ctx["sections"][0]["url"] == "https://cms.example/world/"
    assert ctx["sections"][0]["more"] == 2
