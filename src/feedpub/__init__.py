"""feedpub: RSS/Atom/JSON Feed and email digest publisher for online newsrooms.

The names below are imported on first use (PEP 562), so ``import feedpub`` (which every
``feedpub`` command line does) costs nothing it does not need."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feedpub.errors import (
        ConfigError,
        ContentError,
        DeliveryError,
        FeedpubError,
        StoreError,
    )
    from feedpub.types import Article, ArticleStatus, Image, ParsedArticle

__version__ = "0.1.0"

_LAZY = {
    "Article": "feedpub.types",
    "ArticleStatus": "feedpub.types",
    "ConfigError": "feedpub.errors",
    "ContentError": "feedpub.errors",
    "DeliveryError": "feedpub.errors",
    "FeedpubError": "feedpub.errors",
    "Image": "feedpub.types",
    "ParsedArticle": "feedpub.types",
    "StoreError": "feedpub.errors",
}

__all__ = [
    "Article",
    "ArticleStatus",
    "ConfigError",
    "ContentError",
    "DeliveryError",
    "FeedpubError",
    "Image",
    "ParsedArticle",
    "StoreError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'feedpub' has no attribute {name!r}")
