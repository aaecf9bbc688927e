"""Email digests: subscribers, editions, rendering, personalization, delivery, archive."""

from feedpub.digest.preview import write_preview
from feedpub.digest.send import SendReport, send_newsletter

__all__ = ["SendReport", "send_newsletter", "write_preview"]
