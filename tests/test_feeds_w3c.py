"""The W3C Feed Validation Service (github.com/w3c/feedvalidator), run locally.

Opt-in: it is not a dependency of ours and none of its code lives here. Point
FEEDVALIDATOR at the ``src`` folder of a local checkout of w3c/feedvalidator and
FEEDVALIDATOR_PYTHON at a Python that has lxml, html5lib and rdflib, then run
``.venv/bin/pytest tests/test_feeds_w3c.py``.

The bar (DESIGN.md): no errors and no warnings for every RSS, Atom and OPML file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedpub.collect import collect
from feedpub.config import load_config
from feedpub.feeds import build_feeds
from feedpub.store import Store
from tests.regenerate_golden import build_feeds_corpus

VALIDATOR = os.environ.get("FEEDVALIDATOR", "")
PYTHON = os.environ.get("FEEDVALIDATOR_PYTHON", "")
SAMPLE = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not (VALIDATOR and PYTHON), reason="set FEEDVALIDATOR and FEEDVALIDATOR_PYTHON to run"
)

SCRIPT = r"""
import glob, json, os, sys
import urllib.request  # the validator's validateURL needs it imported first
sys.path.insert(0, sys.argv[1])
import feedvalidator
from feedvalidator.logging import Error, Warning
from feedvalidator.formatter.text_plain import Formatter
root, base = sys.argv[2], sys.argv[3]
out = {}
paths = sorted(glob.glob(root + "/**/*.xml", recursive=True)) + [root + "/feeds.opml"]
for path in paths:
    rel = os.path.relpath(path, root)
    with open(path, "rb") as f:
        events = feedvalidator.validateString(f.read(), firstOccurrenceOnly=0, base=base + rel)["loggedEvents"]
    errors = [e for e in events if isinstance(e, Error)]
    warnings = [e for e in events if isinstance(e, Warning)]
    out[rel] = {"errors": len(errors), "warnings": len(warnings), "messages": list(Formatter(errors + warnings))}
print(json.dumps(out))
"""


def validate(out: Path, base: str) -> dict[str, dict[str, object]]:
    r = subprocess.run(
        [PYTHON, "-c", SCRIPT, VALIDATOR, str(out), base],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, dict[str, object]] = json.loads(r.stdout)
    return result


def test_golden_corpus_feeds_are_valid(tmp_path: Path) -> None:
    out = build_feeds_corpus(tmp_path)
    result = validate(out, "https://gazette.example/")
    assert len(result) >= 19
    bad = {k: v["messages"] for k, v in result.items() if v["errors"] or v["warnings"]}
    assert bad == {}


@pytest.mark.parametrize("small_pages", [False, True], ids=["default", "archives"])
def test_sample_newsroom_feeds_are_valid(tmp_path: Path, small_pages: bool) -> None:
    shutil.copytree(SAMPLE / "content", tmp_path / "content")
    text = (SAMPLE / "config.toml").read_text(encoding="utf-8")
    if small_pages:
        text = text.replace("items_per_feed = 50", "items_per_feed = 5\narchive_page_size = 3")
        text = text.replace(
            '# websub_hub = "https://hub.example/"', 'websub_hub = "https://hub.example/"'
        )
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    store = Store(config.store_url)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    collect(config, store, now=now)
    build_feeds(config, store, now=now, ping=False)
    store.close()
    result = validate(config.output_dir, config.site.base_url)
    assert any("/archive/" in k for k in result) == small_pages
    bad = {k: v["messages"] for k, v in result.items() if v["errors"] or v["warnings"]}
    assert bad == {}
