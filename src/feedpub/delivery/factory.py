"""Pick the messenger ``[delivery] backend`` names: the outbox folder or SMTP."""

from __future__ import annotations

from feedpub.config import Config
from feedpub.delivery.base import Messenger
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.delivery.smtp import SmtpMessenger
from feedpub.store import Store


def open_messenger(config: Config, store: Store) -> Messenger:
    """The configured messenger. SMTP settings (AUTH password variable, DKIM key file) are
    checked here, before an edition is frozen or a message composed: ConfigError."""
    if config.delivery.backend == "smtp":
        return SmtpMessenger.from_config(config)
    return OutboxMessenger(config.resolve(config.delivery.outbox_dir), store)
