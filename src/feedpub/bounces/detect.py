"""flufl.bounce (Mailman's bounce detectors), wrapped: the one module that imports it.

Used only as the fallback for bounces that are not RFC 3464 DSNs (old Exim text
bounces, Yahoo's own format, qmail, ...): ``classify`` reads DSNs and ARF reports
itself, preferring their structured fields. flufl.bounce 6 runs its detectors from the
most specific to the generic ones and stops at the first that finds something (older
releases returned the union of all detectors, so a returned original message could add
bogus matches from the generic ones — FIELD-NOTES, its issue #12); we call it only on
mail that already looks like a bounce, and act only through the VERP token.
"""

from __future__ import annotations

import logging
from email.message import Message

from flufl.bounce import all_failures

log = logging.getLogger("feedpub.bounces")


def scan(msg: Message) -> tuple[set[str], set[str]]:
    """(temporary, permanent) failed addresses, lower-cased; empty on a detector error."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception as e:  # a detector choking on odd input must not stop an ingest
        log.warning("flufl.bounce failed on a message", extra={"error": repr(e)[:300]})
        return set(), set()
    return _decode(temporary), _decode(permanent)


def _decode(found: frozenset[bytes]) -> set[str]:
    out = set()
    for a in found:
        text = a.decode("ascii", "replace").strip().strip("<>").lower()
        if "@" in text:
            out.add(text)
    return out
