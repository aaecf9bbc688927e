"""Configuration: valid files load; every mistake names its key and exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.config import load_config
from feedpub.errors import ConfigError

from .conftest import BASE_CONFIG, Newsroom
from .test_scheduler_daemon import CONFIG

REPO = Path(__file__).resolve().parents[1]


def test_sample_config_loads() -> None:
    cfg = load_config(REPO / "config.toml")
    assert cfg.site.base_url == "https://jadetimes.example/"
    assert [b.slug for b in cfg.beats][:2] == ["russia-ukraine-war", "sri-lanka"]
    assert cfg.store_url == "sqlite:///" + str(REPO / "feedpub.db")
    assert cfg.output_dir == REPO / "feeds"


def test_base_url_gets_trailing_slash(newsroom: Newsroom) -> None:
    newsroom.set_config(base=BASE_CONFIG.replace("https://news.example/", "https://news.example/x"))
    assert newsroom.config().site.base_url == "https://news.example/x/"


@pytest.mark.parametrize(
    ("old", "new", "key", "hint"),
    [
        (
            'base_url = "https://news.example/"',
            'base_url = "/relative/"',
            "site.base_url",
            "absolute",
        ),
        ('timezone = "Asia/Colombo"', 'timezone = "Mars/Olympus"', "site.timezone", "IANA"),
        ('language = "en"', 'language = "en_US"', "site.language", "en-US"),
        ("items_per_feed = 5", 'items_per_feed = "five"', "output.items_per_feed", "integer"),
        (
            'title = "Test Times"',
            'title = "Test Times"\ncolour = "red"',
            "site.colour",
            "unknown key",
        ),
        ('default_beat = "world"', 'default_beat = "sport"', "site.default_beat", "not defined"),
        (
            'token_key_env = "FEEDPUB_TEST_SECRET"',
            'token_key_env = "FEEDPUB_TEST_SECRET"\n[schedule]\ncollect_every = "5 minutes"',
            "schedule.collect_every",
            '"PT5M"',
        ),
    ],
)
def test_config_errors_name_the_key(
    newsroom: Newsroom, old: str, new: str, key: str, hint: str
) -> None:
    assert old in BASE_CONFIG
    newsroom.set_config(base=BASE_CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError) as ei:
        newsroom.config()
    assert key in str(ei.value)
    assert hint in str(ei.value)
    assert str(newsroom.config_path) in str(ei.value)


def test_undefined_newsletter_beat(newsroom: Newsroom) -> None:
    newsroom.set_config(
        '[[newsletters]]\nslug = "x"\ntitle = "X"\nfrom = "a@b.example"\nbeats = ["nope"]\n'
    )
    with pytest.raises(ConfigError, match=r"newsletters\[1\]\.beats: beat 'nope' is not defined"):
        newsroom.config()


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("[site\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_missing_secret_is_a_config_error(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDPUB_TEST_SECRET")
    with pytest.raises(ConfigError, match="FEEDPUB_TEST_SECRET"):
        newsroom.config().token_key()


def test_cli_exits_2_on_config_error(newsroom: Newsroom) -> None:
    newsroom.set_config(
        base=BASE_CONFIG.replace('timezone = "Asia/Colombo"', 'timezone = "Nowhere"')
    )
    result = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "collect"])
    assert result.exit_code == 2
    assert "site.timezone" in result.output


def test_error_messages_keep_their_bracketed_config_keys(newsroom: Newsroom) -> None:
    # "[store] url" was printed as " url": rich took "[store]" for a markup tag.
    newsroom.set_config(base=CONFIG.replace("sqlite:///feedpub.db", "sqlite:///missing/f.db"))
    res = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "status"])
    assert res.exit_code == 2
    assert "create it or fix [store] url" in " ".join(res.output.split()), res.output


@pytest.mark.parametrize(
    ("line", "key", "hint"),
    [
        ('from = "Test Times, Colombo <news@news.example>"', "newsletters[0].from", "one address"),
        ('from = "not an address"', "newsletters[0].from", "one address"),
        ('title = "Daily\\r\\nBcc: all@example.com"', "newsletters[0].title", "one line"),
    ],
)
def test_newsletter_header_fields_are_checked(
    newsroom: Newsroom, line: str, key: str, hint: str
) -> None:
    base = BASE_CONFIG.replace('title = "Test Daily"\nfrom = "Test Times <news@news.example>"', "")
    assert base != BASE_CONFIG
    other = 'title = "Test Daily"' if not line.startswith("title") else 'from = "a@news.example"'
    newsroom.set_config(base=base.replace('slug = "daily"\n', f'slug = "daily"\n{line}\n{other}\n'))
    with pytest.raises(ConfigError) as ei:
        newsroom.config()
    assert key in str(ei.value) and hint in str(ei.value)


def test_newsletters_need_an_https_unsubscribe_url(newsroom: Newsroom) -> None:
    newsroom.set_config(base=BASE_CONFIG.replace("https://news.example/", "http://news.example/"))
    with pytest.raises(ConfigError, match=r"\(RFC 8058\) needs an https URL"):
        newsroom.config()
    # An https unsubscribe endpoint elsewhere is enough.
    newsroom.set_config(
        '[delivery]\nunsubscribe_url = "https://mail.example/unsubscribe"\n',
        base=BASE_CONFIG.replace("https://news.example/", "http://news.example/"),
    )
    assert newsroom.config().delivery.unsubscribe_url == "https://mail.example/unsubscribe"
