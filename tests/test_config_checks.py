"""Config values that used to fail later (a KeyError at collect, files written outside
the output folder, a traceback at digest send) are config errors at load: exit status 2,
the key path named (issue 11)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from tests.conftest import BASE_CONFIG, Newsroom


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    [
        (
            'article_path = "post/{slug}/"',
            'article_path = "post/{slg}/"',
            "site.article_path",
            "unknown placeholder {slg}",
        ),
        (
            'article_path = "post/{slug}/"',
            'article_path = "post/{slug.__class__}/"',
            "site.article_path",
            "unknown placeholder {slug.__class__}",
        ),
        (
            "items_per_feed = 5",
            'items_per_feed = 5\nbeat_path = "../../../x_{slug}/"',
            "output.beat_path",
            "leads outside the output folder",
        ),
        (
            "items_per_feed = 5",
            'items_per_feed = 5\nauthor_path = "authors/"',
            "output.author_path",
            "has no {slug}",
        ),
        (
            'schedule = "0 7 * * *"',
            'schedule = "61 7 * * *"',
            "newsletters[0].schedule",
            "is not a valid cron expression",
        ),
    ],
    ids=["unknown-placeholder", "attribute-access", "escapes-output", "no-slug", "bad-cron"],
)
@pytest.mark.parametrize("command", [["collect"], ["build"], ["digest", "send", "daily"]])
def test_bad_pattern_or_cron_is_a_config_error_at_load(
    newsroom: Newsroom, old: str, new: str, key: str, says: str, command: list[str]
) -> None:
    assert old in BASE_CONFIG
    newsroom.set_config(base=BASE_CONFIG.replace(old, new))
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), *command])
    assert r.exit_code == 2, r.output
    assert f"{key}: " in r.stderr and says in r.stderr
    assert "Traceback" not in r.stderr
    assert not (newsroom.root.parent / "x_world").exists()


def test_a_leading_slash_in_a_path_pattern_is_still_accepted(newsroom: Newsroom) -> None:
    newsroom.set_config(
        base=BASE_CONFIG.replace('article_path = "post/{slug}/"', 'article_path = "/p/{slug}/"')
    )
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "collect"])
    assert r.exit_code == 0, r.output
