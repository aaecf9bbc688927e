"""Email digests: subscribers, editions, rendering, personalization, delivery, archive."""

from feedpub.digest.send import SendReport, send_newsletter, write_preview

__all__ = ["SendReport", "send_newsletter", "write_preview"]
