"""The daemon's lifecycle job (``feedpub run``, every ``[signup] queue_every``): send the
mail queue, expire sign-ups nobody confirmed, prune old rate-limit windows and sent
queue rows, and — when it is due — ingest the bounce mailbox. Every step logs and
carries on when another fails: a down relay must not stop the mailbox being read."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from feedpub.clock import Clock
from feedpub.config import Config
from feedpub.errors import FeedpubError
from feedpub.store import Store

log = logging.getLogger("feedpub.scheduler")

KEEP_QUEUE = timedelta(days=30)  # sent confirmation mail rows are kept this long


def run_lifecycle(config: Config, store: Store, *, now: datetime, clock: Clock, poll: bool) -> None:
    from feedpub.lifecycle import mailqueue, optin, ratelimit
    from feedpub.lifecycle.mailsend import drain

    try:
        with store.begin() as conn:
            expired = optin.expire_pending(conn, now)
            ratelimit.prune(conn, now)
            mailqueue.prune_sent(conn, now - KEEP_QUEUE)
        if expired:
            log.info("sign-ups expired", extra={"count": expired})
    except Exception as e:
        log.error(
            "lifecycle cleanup failed",
            exc_info=not isinstance(e, FeedpubError),
            extra={"error": str(e)},
        )
    if config.newsletters:
        try:
            q = drain(config, store, clock=clock)
            if q.paused:
                log.warning(
                    "mail queue paused: no SMTP server usable",
                    extra={"error": "; ".join(q.errors[:1])},
                )
        except Exception as e:
            log.error(
                "mail queue failed",
                exc_info=not isinstance(e, FeedpubError),
                extra={"error": str(e)},
            )
    if poll:
        from feedpub.bounces.mailbox import ingest_configured

        try:
            r = ingest_configured(config, store, now)
            store.record_run("bounces", now, clock(), not r.errors, r.summary())
            log.info(
                "bounce mailbox read",
                extra={k: v for k, v in r.summary().items() if isinstance(v, int)},
            )
        except Exception as e:
            log.error(
                "bounce mailbox failed",
                exc_info=not isinstance(e, FeedpubError),
                extra={"error": str(e)},
            )
