"""The content fuzz target (tests/fuzz_content.py) with a small budget: hostile and
careless files through the folder source, the pasted reader and the text cleaner give
only rejections and safe, valid fields. ``make fuzz MINUTES=N`` runs it for longer."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests import fuzz_content
from tests.fuzz_content import Tally, check_cleaner, check_folder, run


def test_fuzzed_content_gives_no_crash_and_no_unsafe_output() -> None:
    tally = Tally()
    with tempfile.TemporaryDirectory() as d:
        run(150, tally, Path(d))
    assert tally.inputs >= 150
    assert (tally.crashes, tally.unsafe) == (0, 0), "\n".join(tally.examples)


def test_the_fuzz_checks_catch_what_they_look_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle itself: a crash and an unsafe output are counted (so 0 means something)."""
    tally = Tally()
    good = [(".md", "---\ntitle: ok\ndate: 2026-11-20\n---\nfine\n")]
    with tempfile.TemporaryDirectory() as d:
        check_folder(good, Path(d), tally)
        assert (tally.crashes, tally.unsafe) == (0, 0), tally.examples
        monkeypatch.setattr(fuzz_content, "screen_result", lambda *_a: 1 / 0)
        check_folder(good, Path(d), tally)
    assert tally.crashes == 1
    from tests.fuzz_content import unsafe_html

    assert unsafe_html('<a href="javascript:x">j</a>') is not None
    assert unsafe_html('<img src="https://a.example/[">') is not None
    assert unsafe_html('<p onclick="x">p</p>') is not None
    assert unsafe_html('<a href="https://a.example/ok">ok</a>') is None
    check_cleaner("<b>fine</b>", tally)
    assert tally.inputs == 3
