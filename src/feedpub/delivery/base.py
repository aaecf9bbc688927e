"""The messenger interface the sending manager depends on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    edition_id: int
    subscriber_id: int
    envelope_from: str  # bare address
    recipient: str  # bare address
    message_id: str  # the Message-ID header value, without <>
    data: bytes  # the whole RFC 5322 message, CRLF line endings (email.policy.SMTP)


class Messenger(Protocol):
    """Delivers one message, or raises:

    - ``feedpub.errors.TemporaryDeliveryError``: try again later (4xx, dropped connection);
    - ``feedpub.errors.PermanentDeliveryError``: never retry this recipient (5xx);
    - ``feedpub.errors.ServerUnavailableError``: no server reachable; pause the edition.
    """

    def send(self, message: OutgoingMessage) -> None: ...

    def close(self) -> None: ...
