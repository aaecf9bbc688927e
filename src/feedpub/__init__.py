"""feedpub: RSS/Atom/JSON Feed and email digest publisher for online newsrooms."""

from feedpub.errors import (
    ConfigError,
    ContentError,
    DeliveryError,
    FeedpubError,
    StoreError,
)
from feedpub.types import Article, ArticleStatus, Image, ParsedArticle

__version__ = "0.1.0"

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
