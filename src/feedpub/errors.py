"""Exception hierarchy: one root, precise subclasses.

Every error a user can cause says *where* (file, line, key path) and *what to do*.
"""

from __future__ import annotations

from pathlib import Path


class FeedpubError(Exception):
    """Root of every error feedpub raises on purpose."""

    exit_code = 1


class ConfigError(FeedpubError):
    """The configuration is wrong; nothing was done. Exit status 2."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = str(path) if path else "configuration"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")
        self.message = message


class UsageError(FeedpubError):
    """A command was called wrongly (unknown newsletter, bad argument). Exit status 2."""

    exit_code = 2


class ContentError(FeedpubError):
    """One input (file, upstream entry, page) was rejected; the others go on."""

    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


class StoreError(FeedpubError):
    """The store cannot be opened, migrated or written."""


class SourceError(FeedpubError):
    """A whole source failed (unreachable host, 410, bad folder). Other sources go on."""


class BuildError(FeedpubError):
    """A feed could not be written."""


class DeliveryError(FeedpubError):
    """Root of delivery failures."""


class TemporaryDeliveryError(DeliveryError):
    """Try again later (SMTP 4xx, dropped connection, timeout)."""


class ConnectionFailedError(TemporaryDeliveryError):
    """The connection was lost (dropped, timed out, 421) on every try of one message: the
    relay may be stalled. The ledger holds such a row until the relay's state is known."""


class PermanentDeliveryError(DeliveryError):
    """Do not retry this recipient (SMTP 5xx)."""


class ServerUnavailableError(TemporaryDeliveryError):
    """No configured server accepts connections: pause the edition, resume next run."""


class LockedError(FeedpubError):
    """Another feedpub process holds the lock."""

    exit_code = 2


def is_rust_panic(error: BaseException) -> bool:
    """True for the ``PanicException`` a Rust extension (pyo3) raises when its code panics.

    pyo3 derives it from BaseException, not Exception, so ``except Exception`` lets it through
    and one odd input would stop a whole run; callers that reject one input alone catch
    BaseException and keep only these (KeyboardInterrupt and SystemExit still propagate)."""
    return type(error).__name__ == "PanicException"
