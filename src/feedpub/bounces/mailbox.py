"""Ingest from the configured mailbox (``[bounces.mailbox]``: a Maildir or IMAP), what
``feedpub bounces ingest`` without a source and the daemon's poll do.

IMAP is read incrementally: the last UID ingested is kept in the store (``meta``) with
the folder's UIDVALIDITY; a new UIDVALIDITY starts again from the first message (the
ingest's dedupe then makes the re-read harmless).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from feedpub.bounces.ingest import IngestReport, ingest
from feedpub.bounces.sources import Maildir, RawMessage
from feedpub.config import Config
from feedpub.errors import UsageError
from feedpub.store import Store, get_meta, set_meta

META_PREFIX = "bounces.imap."


def ingest_maildir(
    config: Config, store: Store, path_text: str, now: datetime, *, delete: bool
) -> IngestReport:
    box = Maildir(config.resolve(_path(path_text)))
    return ingest(
        config,
        store,
        box.messages(),
        source=f"maildir:{box.path}",
        now=now,
        on_stored=box.delete if delete else None,
    )


def _path(text: str) -> Path:
    return Path(text).expanduser()


def ingest_configured(config: Config, store: Store, now: datetime) -> IngestReport:
    mb = config.bounces.mailbox
    if mb is None:
        raise UsageError(
            "no mailbox configured: give a source (a Maildir folder, or - for stdin) or "
            "set [bounces.mailbox] (see docs/bounces.md)"
        )
    if mb.type == "maildir":
        assert mb.path is not None
        return ingest_maildir(config, store, str(mb.path), now, delete=mb.delete_processed)
    from feedpub.bounces.imap import ImapMailbox

    with ImapMailbox(config, mb) as box:
        key = META_PREFIX + box.name
        with store.read() as conn:
            saved = get_meta(conn, key) or ""
        validity, _, last = saved.partition(":")
        after = int(last) if last.isdigit() and validity == str(box.uidvalidity) else 0
        seen = [after]

        def tracked() -> Iterator[RawMessage]:
            for m in box.messages(after):
                yield m
                seen.append(int(m.where.split()[-1]))

        report = ingest(
            config,
            store,
            tracked(),
            source=box.name,
            now=now,
            on_stored=box.delete if mb.delete_processed else None,
        )
        if not report.errors and max(seen) != after:
            with store.begin() as conn:
                set_meta(conn, key, f"{box.uidvalidity}:{max(seen)}")
        return report
