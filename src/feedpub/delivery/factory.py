"""Pick the messenger ``[delivery] backend`` names: the outbox folder or SMTP."""

from __future__ import annotations

from datetime import datetime

from feedpub.config import Config
from feedpub.delivery.base import Messenger
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.delivery.smtp import SmtpMessenger
from feedpub.store import Store


def open_messenger(config: Config, store: Store, now: datetime) -> Messenger:
    """The configured messenger. SMTP settings (AUTH password variable, DKIM key file) are
    checked here, before an edition is frozen or a message composed: ConfigError. The
    relays' rate limits are kept in the store, shared by every instance sending through
    them (``delivery.sharedrate``; the main relay's hour starts from what the ledger sent
    in the hour before its first limited send)."""
    if config.delivery.backend == "smtp":
        return SmtpMessenger.from_config(config, store=store)
    from feedpub.delivery.dkim import DkimSigner

    # Signed like SMTP mail, so DKIM can be checked on the outbox before switching.
    return OutboxMessenger(
        config.resolve(config.delivery.outbox_dir), store, signer=DkimSigner.from_config(config)
    )
