"""What a classified message does to its subscriber. Pure: the verdict's kind, the
subscriber's state and ``[bounces]`` in, a Decision out.

- hard bounce: counted; at ``hard_after`` the subscriber becomes ``bounced`` (and goes
  on the suppression list when ``suppress_hard_bounces``);
- soft bounce: counted; ``bounced`` (not suppressed: the mailbox may come back) once
  ``soft_after`` soft bounces fall within ``soft_window``;
- complaint: unsubscribed from every newsletter and suppressed at once;
- unsubscribe request (mailto): unsubscribed from that newsletter;
- everything else (auto-replies, delay warnings, success notices, unreadable bounces,
  unmatched or forged mail): nothing changes; the message is kept for review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from feedpub.config_lifecycle import BouncesConfig


@dataclass(frozen=True, slots=True)
class SubscriberState:
    status: str  # pending/active/unsubscribed/bounced/erased
    hard_bounces: int  # before this message
    soft_recent: int  # soft bounces within soft_window, before this message


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # what `bounces list` shows: counted / bounced / unsubscribed / ignored ...
    new_status: str | None = None  # the subscriber's status becomes this
    count_hard: bool = False
    suppress: str | None = None  # suppression reason
    unsubscribe: Literal["all", "newsletter"] | None = None


IGNORED = Decision("ignored")


def decide(kind: str, state: SubscriberState | None, policy: BouncesConfig) -> Decision:
    if state is None or state.status == "erased":
        return IGNORED
    live = state.status in ("active", "pending")
    if kind == "hard":
        if state.hard_bounces + 1 >= policy.hard_after:
            return Decision(
                "bounced" if live else "counted",
                new_status="bounced" if live else None,
                count_hard=True,
                suppress="hard-bounce" if policy.suppress_hard_bounces else None,
            )
        return Decision("counted", count_hard=True)
    if kind == "soft":
        if state.soft_recent + 1 >= policy.soft_after and live:
            return Decision("bounced", new_status="bounced")
        return Decision("counted")
    if kind == "complaint":
        return Decision(
            "unsubscribed+suppressed",
            new_status="unsubscribed" if state.status != "bounced" else None,
            suppress="complaint",
            unsubscribe="all",
        )
    if kind == "unsubscribe":
        return Decision("unsubscribed", unsubscribe="newsletter")
    return IGNORED
