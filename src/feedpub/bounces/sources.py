"""Where bounce mail is read from: one message on stdin (an MTA pipe) or a Maildir.
(IMAP: ``bounces.imap``.) Reading never changes the mailbox; only ``delete`` does, and
the ingest calls it for our own messages alone, after they are stored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from feedpub.errors import UsageError

MAX_MESSAGE = 10 * 1024 * 1024  # a bigger "bounce" is not one: read no further


@dataclass(frozen=True, slots=True)
class RawMessage:
    where: str  # "stdin", "new/1732..." (Maildir), "uid 42" (IMAP)
    data: bytes
    envelope_recipient: str | None = None  # what the MTA says it was delivered to


def read_stdin(stream: BinaryIO, recipient: str | None = None) -> Iterator[RawMessage]:
    """The one message an MTA pipes in (Postfix: ``|feedpub bounces ingest -``; its
    ``$ORIGINAL_RECIPIENT`` or ``--recipient`` names the address it came to)."""
    data = stream.read(MAX_MESSAGE + 1)
    if len(data) > MAX_MESSAGE:
        raise UsageError(f"stdin: the message is over {MAX_MESSAGE // 1024 // 1024} MB")
    if data.strip():
        yield RawMessage("stdin", data, recipient)


class Maildir:
    """A Maildir (``cur/``, ``new/``, ``tmp/``); messages in ``tmp/`` are still being
    written and are skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        missing = [d for d in ("cur", "new") if not (path / d).is_dir()]
        if missing:
            raise UsageError(
                f"{path}: not a Maildir (no {' or '.join(d + '/' for d in missing)} folder); "
                "give the folder that holds cur/, new/ and tmp/"
            )

    def messages(self) -> Iterator[RawMessage]:
        for sub in ("new", "cur"):
            folder = self.path / sub
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if e.is_file() and not e.name.startswith("."))
            for name in names:
                try:
                    with open(folder / name, "rb") as f:
                        data = f.read(MAX_MESSAGE + 1)
                except FileNotFoundError:  # taken by another reader meanwhile
                    continue
                if len(data) <= MAX_MESSAGE:
                    yield RawMessage(f"{sub}/{name}", data)

    def delete(self, message: RawMessage) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / message.where).unlink()
