"""The digest as a reader sees it, in headless Chromium (Debian's /usr/bin/chromium driven by
Playwright): the sample's Arabic story reads right to left (right-aligned, its closing
period on the left), the Ukrainian one left to right, at 375 px (a phone) and 1000 px
(a desktop mail client); the lead image never overflows the column (issue 14 items 1, 4).

Screenshots are saved as test artefacts under ``test-artifacts/digest-rtl/`` (git-ignored;
``FEEDPUB_TEST_ARTIFACTS`` moves it); the test prints where.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedpub.collect import collect
from feedpub.config import load_config
from feedpub.digest.preview import write_preview
from feedpub.store import Store

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
SAMPLE = Path(__file__).resolve().parents[1]
STORIES = (
    "2026-11-11-jordan-desalination-project.md",  # Arabic, no language in its front matter
    "2026-10-30-kyiv-underground-schools.md",  # Ukrainian
    "2026-11-20-colombo-port-expansion.md",  # English, with a lead image 1600x900
)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ARTIFACTS = Path(os.environ.get("FEEDPUB_TEST_ARTIFACTS", SAMPLE / "test-artifacts")) / "digest-rtl"

# Geometry read in the page: the block's box, its text's first and last glyph boxes.
PROBE = """(lang) => {
  const block = document.querySelector(`div.article[lang="${lang}"]`);
  const cs = getComputedStyle(block);
  const box = block.getBoundingClientRect();
  const summary = block.lastElementChild;
  const text = summary.firstChild;
  const n = text.textContent.length;
  const glyph = (i) => { const r = document.createRange(); r.setStart(text, i);
    r.setEnd(text, i + 1); return r.getBoundingClientRect(); };
  const whole = document.createRange(); whole.selectNodeContents(block.firstElementChild);
  const title = whole.getBoundingClientRect();
  return {dir: cs.direction, align: cs.textAlign, lang: block.lang,
          left: box.left, right: box.right,
          titleLeft: title.left, titleRight: title.right,
          last: text.textContent.slice(-1), lastBox: glyph(n - 1).toJSON(),
          beforeLast: glyph(n - 2).toJSON()};
}"""


@pytest.fixture(scope="module")
def digest_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rtl")
    (root / "content").mkdir()
    for name in STORIES:
        shutil.copy(SAMPLE / "content" / name, root / "content" / name)
    text = (SAMPLE / "config.toml").read_text(encoding="utf-8")
    text = text.replace('templates_dir = "templates"', "")
    (root / "config.toml").write_text(text, encoding="utf-8")
    os.environ.setdefault("FEEDPUB_SECRET", "screenshot-test-key")
    config = load_config(root / "config.toml")
    store = Store(config.store_url)
    try:
        collect(config, store, now=NOW)
        files = write_preview(config, store, "daily", now=NOW, folder=root / "preview")
    finally:
        store.close()
    assert files.articles == 3
    return files.html


@pytest.fixture(scope="module")
def browser() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install -y chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("width", [375, 1000])
def test_arabic_reads_right_to_left_and_ukrainian_left_to_right(
    browser: Any, digest_html: Path, width: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        # Loopback only: the sample's image URLs point at jadetimes.example.
        page.route(re.compile(r"^https?://"), lambda route: route.abort())
        page.goto(digest_html.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"digest-{width}px.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        ar = page.evaluate(PROBE, "ar")
        uk = page.evaluate(PROBE, "uk")
        img = page.evaluate(
            """() => { const i = document.querySelector('img[src*="colombo-west-terminal"]');
                 const col = i.closest('td').getBoundingClientRect();
                 const r = i.getBoundingClientRect();
                 return {w: r.width, h: r.height, colLeft: col.left, colRight: col.right,
                         left: r.left, right: r.right, alt: i.alt,
                         vw: document.documentElement.clientWidth}; }"""
        )
    finally:
        page.close()

    # Arabic: right to left, right-aligned: the headline ends at the block's right edge.
    assert (ar["lang"], ar["dir"], ar["align"]) == ("ar", "rtl", "right")
    assert abs(ar["titleRight"] - ar["right"]) <= 2, ar
    assert ar["titleLeft"] > ar["left"] + 20, ar  # a short headline does not reach the left
    # ...and the closing period sits at the end of the line, on the left of the last word.
    assert ar["last"] == "."
    assert ar["lastBox"]["right"] <= ar["beforeLast"]["left"] + 1, ar

    # Ukrainian: left to right, left-aligned, its period on the right of the last word.
    assert (uk["lang"], uk["dir"], uk["align"]) == ("uk", "ltr", "left")
    assert abs(uk["titleLeft"] - uk["left"]) <= 2, uk
    assert uk["last"] in ".…"  # a derived summary ends with an ellipsis
    assert uk["lastBox"]["left"] >= uk["beforeLast"]["right"] - 1, uk

    # The lead image: its own alt text, inside the column, not wider than the viewport,
    # and the 16:9 shape kept at every width.
    assert img["alt"].startswith("A container ship")
    assert img["colLeft"] - 1 <= img["left"] and img["right"] <= img["colRight"] + 1, img
    assert img["w"] <= img["vw"]
    assert abs(img["h"] - img["w"] * 900 / 1600) <= 2, img
