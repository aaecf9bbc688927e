"""Delivery: one small interface (``Messenger.send``) with an outbox-folder backend and
an SMTP backend, driven by a manager that records every step in the ledger."""
