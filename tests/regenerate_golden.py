"""Regenerate the golden files: ``.venv/bin/python tests/regenerate_golden.py``.

One function per area (feeds first); each rebuilds its expected output from its fixed
corpus. Review the diff (``git diff tests/data/golden``) before committing it.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"

# ---- feeds -----------------------------------------------------------------------------
FEEDS_CORPUS = GOLDEN / "feeds" / "corpus"
FEEDS_EXPECTED = GOLDEN / "feeds" / "expected"
FEEDS_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def build_feeds_corpus(workdir: Path, extra_config: str = "") -> Path:
    """Copy the feeds corpus into ``workdir``, collect and build it at FEEDS_NOW.
    ``extra_config`` is appended to the [output] table. Returns the output folder."""
    from feedpub.collect import collect
    from feedpub.config import load_config
    from feedpub.feeds import build_feeds
    from feedpub.store import Store

    text = (FEEDS_CORPUS / "config.toml").read_text(encoding="utf-8")
    text = text.replace("archive_page_size = 2\n", "archive_page_size = 2\n" + extra_config)
    (workdir / "config.toml").write_text(text, encoding="utf-8")
    shutil.copytree(FEEDS_CORPUS / "content", workdir / "content")
    config = load_config(workdir / "config.toml")
    store = Store(config.store_url)
    try:
        collect(config, store, now=FEEDS_NOW)
        build_feeds(config, store, now=FEEDS_NOW, ping=False)
    finally:
        store.close()
    return config.output_dir


def regenerate_feeds() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = build_feeds_corpus(Path(tmp))
        shutil.rmtree(FEEDS_EXPECTED, ignore_errors=True)
        shutil.copytree(out, FEEDS_EXPECTED)
    n = sum(1 for p in FEEDS_EXPECTED.rglob("*") if p.is_file())
    print(f"feeds: {n} golden files in {FEEDS_EXPECTED.relative_to(GOLDEN.parent.parent)}")


def main() -> None:
    regenerate_feeds()


if __name__ == "__main__":
    main()
