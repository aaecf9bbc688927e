"""Pick the messenger ``[delivery] backend`` names: the outbox folder or SMTP."""

from __future__ import annotations

from datetime import datetime

from feedpub.config import Config
from feedpub.delivery.base import Messenger
from feedpub.delivery.manager import sent_in_last_hour
from feedpub.delivery.outbox import OutboxMessenger
from feedpub.delivery.smtp import SmtpMessenger
from feedpub.store import Store


def open_messenger(config: Config, store: Store, now: datetime) -> Messenger:
    """The configured messenger. SMTP settings (AUTH password variable, DKIM key file) are
    checked here, before an edition is frozen or a message composed: ConfigError. The
    hourly rate limit starts from what the ledger sent in the hour before ``now`` (every
    process)."""
    if config.delivery.backend == "smtp":
        per_hour = config.delivery.smtp.rate_per_hour
        ago = sent_in_last_hour(store, now, per_hour) if per_hour else []
        return SmtpMessenger.from_config(config, sent_ago=ago)
    from feedpub.delivery.dkim import DkimSigner

    # Signed like SMTP mail, so DKIM can be checked on the outbox before switching.
    return OutboxMessenger(
        config.resolve(config.delivery.outbox_dir), store, signer=DkimSigner.from_config(config)
    )
