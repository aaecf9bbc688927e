"""Email digests: subscribers, editions, rendering, personalization, delivery, archive.

The names below are imported on first use (PEP 562): ``feedpub status`` reads edition
numbers from ``digest.frozen`` without importing the renderer and the sender."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feedpub.digest.preview import write_preview
    from feedpub.digest.send import SendReport, send_newsletter

_LAZY = {
    "SendReport": "feedpub.digest.send",
    "send_newsletter": "feedpub.digest.send",
    "write_preview": "feedpub.digest.preview",
}

__all__ = ["SendReport", "send_newsletter", "write_preview"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'feedpub.digest' has no attribute {name!r}")
