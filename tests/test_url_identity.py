"""Which stored article a URL means when several have had it: a URL is unique among
live articles only (a retracted article's URL may be taken by a newer one). The live one
is meant, whatever order the store returns the rows in (SQLite and PostgreSQL differ):
a new file with that URL is its duplicate, not the retracted article's return."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from feedpub.decide import index_by_url
from feedpub.store import StoredArticleState
from feedpub.types import ArticleStatus

T = datetime(2031, 3, 1, 9, tzinfo=UTC)
URL = "https://news.example/post/ferry/"


def _state(id_: str, status: ArticleStatus, url: str = URL) -> StoredArticleState:
    return StoredArticleState(id_, "folder:content", f"{id_}.md", url, "h", status, T, T)


def test_the_live_article_owns_a_url_a_retracted_one_had_in_any_row_order() -> None:
    live = _state("tag:b", ArticleStatus.PUBLISHED)
    old = _state("tag:a", ArticleStatus.RETRACTED)
    older = _state("tag:c", ArticleStatus.RETRACTED)
    other = _state("tag:d", ArticleStatus.PUBLISHED, "https://news.example/post/other/")
    for rows in itertools.permutations([live, old, older, other]):
        index = index_by_url(rows)
        assert index[URL] is live and index[other.url] is other


def test_between_retracted_articles_the_choice_does_not_depend_on_row_order() -> None:
    a = _state("tag:a", ArticleStatus.RETRACTED)
    c = _state("tag:c", ArticleStatus.RETRACTED)
    assert index_by_url([a, c])[URL] is index_by_url([c, a])[URL] is c
