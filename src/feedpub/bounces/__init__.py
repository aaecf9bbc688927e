"""Bounce, complaint and mailto-unsubscribe mail: read it (stdin, Maildir, IMAP),
classify it, map it to one ledger row through the VERP token, apply the configured
action, keep the raw message for review (``feedpub bounces list|undo``)."""
