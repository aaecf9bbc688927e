"""Unsubscribe tokens (feedpub.digest.tokens): anything but a genuine token is refused,
never a crash; ``subscribers unsubscribe-token`` takes the token in any form a reader's
mail brings it (the List-Unsubscribe URL, the mailto link, a "Re:" subject).

(The tokens of a sent edition, and a forged one refused by the command: test_digest.py;
the web endpoints: test_web.py.)"""

from __future__ import annotations

import pytest

from feedpub.digest import subscribers as subs
from feedpub.digest.tokens import UNSUBSCRIBE, Tokens
from tests.conftest import Newsroom
from tests.test_digest_support import _run, subscribe


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


def test_unsubscribe_token_command_rejects_non_ascii_token(newsroom: Newsroom) -> None:
    store = newsroom.store()
    subscribe(newsroom.config(), store, "a@example.com")
    code, _, err = _run(newsroom, "subscribers", "unsubscribe-token", "unsubscribe ².daily.abc")
    assert code == 2 and "not a valid unsubscribe token" in err
