"""``feedpub bounces ingest``: take each message of a mailbox that is ours, classify it,
map it to its ledger row through the VERP token, apply the configured action and keep
the raw message with what was done, all in one transaction per message.

- *Ours* means delivered to one of our bounce addresses (``bounces+TOKEN@domain`` or
  the plain ``bounces@domain`` feedback loops report to) or to a List-Unsubscribe mailto
  address. Anything else is left exactly where it is, unread, unrecorded.
- Only a genuine VERP token (HMAC-checked; in the address the bounce came to or in the
  returned message's headers) or, for mailto unsubscribes, a genuine unsubscribe token
  changes a subscriber. A bounce that names no token, or a forged one, is kept with
  action ``unmatched`` / ``forged`` for an operator to review: a guessed Message-ID or a
  made-up DSN must never unsubscribe anyone.
- Idempotent: a message is keyed by its Message-ID (else its bytes); the same message
  ingested again, from the same or another source, changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.bounces import classify as cl
from feedpub.bounces.policy import Decision, SubscriberState, decide
from feedpub.bounces.sources import RawMessage
from feedpub.config import Config
from feedpub.digest.tokens import UNSUBSCRIBE, LinkMaker, Tokens, find_token, tokens_for
from feedpub.lifecycle.suppression import AddressHasher, suppress
from feedpub.lifecycle.verp import Verp, VerpRef
from feedpub.store import Store

log = logging.getLogger("feedpub.bounces")


@dataclass
class IngestReport:
    read: int = 0
    not_ours: int = 0
    duplicates: int = 0
    stored: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "not_ours": self.not_ours,
            "duplicates": self.duplicates,
            "stored": self.stored,
            "kinds": dict(self.kinds),
            "actions": dict(self.actions),
        }


BATCH = 200  # messages stored per transaction


@dataclass(frozen=True, slots=True)
class _Parsed:
    raw: RawMessage
    msg: Any
    key: str
    verdict: cl.Verdict
    tokens: list[str]


@dataclass(frozen=True, slots=True)
class Target:
    """Who a message is about, once its token checked out."""

    edition_id: int | None = None
    subscriber_id: int | None = None
    newsletter: str | None = None
    queue_id: int | None = None
    note: str = ""


class Ingester:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        key = config.token_key()
        self.verp = Verp(key, config)
        self.tokens: Tokens = tokens_for(config)
        self.hasher = AddressHasher(key)
        self.unsubscribe_to = {
            LinkMaker(config, n.slug, self.tokens).mailto.lower() for n in config.newsletters
        }

    # ---- which messages are ours ----------------------------------------------------
    def ours(self, addresses: list[str]) -> tuple[bool, bool, list[str]]:
        """(ours, to the unsubscribe mailto, VERP tokens found in the addresses)."""
        tokens: list[str] = []
        mine = unsub = False
        for a in addresses:
            hit, token = self.verp.match(a)
            if hit:
                mine = True
                if token:
                    tokens.append(token)
            elif a in self.unsubscribe_to:
                mine = unsub = True
        return mine, unsub, tokens

    # ---- the run --------------------------------------------------------------------
    def run(
        self,
        messages: Iterable[RawMessage],
        *,
        source: str,
        now: datetime,
        on_stored: Callable[[RawMessage], None] | None = None,
    ) -> IngestReport:
        """Messages are read one at a time and stored BATCH to a transaction (memory
        stays bounded); a batch that fails is retried message by message, so one bad
        message never costs the others."""
        report = IngestReport()
        batch: list[_Parsed] = []
        for raw in messages:
            report.read += 1
            try:
                item = self.prepare(raw)
            except Exception as e:  # an unparsable message must not stop the mailbox
                log.exception("cannot read a message", extra={"where": raw.where})
                report.errors.append(f"{source} {raw.where}: {e!r}"[:500])
                continue
            if item is None:
                report.not_ours += 1
                continue
            batch.append(item)
            if len(batch) >= BATCH:
                self._flush(batch, source, now, report, on_stored)
                batch = []
        if batch:
            self._flush(batch, source, now, report, on_stored)
        return report

    def prepare(self, raw: RawMessage) -> _Parsed | None:
        """Parse and classify one message; None when it is not ours (left alone)."""
        msg = cl.parse(raw.data)
        mine, to_unsub, tokens = self.ours(cl.delivery_addresses(msg, raw.envelope_recipient))
        if not mine:
            return None
        verdict = cl.classify(msg, to_unsubscribe=to_unsub)
        return _Parsed(raw, msg, cl.dedupe_key(msg, raw.data), verdict, tokens)

    def _flush(
        self,
        batch: list[_Parsed],
        source: str,
        now: datetime,
        report: IngestReport,
        on_stored: Callable[[RawMessage], None] | None,
    ) -> None:
        with self.store.read() as conn:
            known = set(
                conn.execute(
                    sa.select(s.bounces.c.dedupe_key).where(
                        s.bounces.c.dedupe_key.in_([p.key for p in batch])
                    )
                ).scalars()
            )
        todo: list[_Parsed] = []
        for p in batch:
            if p.key in known:
                report.duplicates += 1
            else:
                known.add(p.key)  # the same message twice in one batch
                todo.append(p)
        done: list[tuple[_Parsed, str, int, Target]] = []
        try:
            with self.store.begin() as conn:
                for p in todo:
                    done.append((p, *self._store(conn, p, source, now)))
        except Exception:
            done = []
            for p in todo:  # one at a time, so only the bad one fails
                try:
                    with self.store.begin() as conn:
                        done.append((p, *self._store(conn, p, source, now)))
                except sa.exc.IntegrityError:
                    report.duplicates += 1  # another ingest stored it meanwhile
                except Exception as e:
                    log.exception("cannot ingest a message", extra={"where": p.raw.where})
                    report.errors.append(f"{source} {p.raw.where}: {e!r}"[:500])
        for p, action, new_id, target in done:
            report.stored += 1
            report.kinds[p.verdict.kind] += 1
            report.actions[action] += 1
            if action not in ("ignored", "unmatched"):
                log.info(
                    "bounce applied",
                    extra={
                        "id": new_id,
                        "kind": p.verdict.kind,
                        "action": action,
                        "subscriber": target.subscriber_id,
                        "edition": target.edition_id,
                    },
                )
            if on_stored is not None:
                on_stored(p.raw)

    def _store(
        self, conn: Connection, p: _Parsed, source: str, now: datetime
    ) -> tuple[str, int, Target]:
        verdict = p.verdict
        target = self.target(conn, verdict, p.tokens, p.msg)
        decision, effects = self.apply(conn, verdict, target, now)
        action = decision.action
        if action == "ignored" and target.note:
            action = target.note.split(":", 1)[0]  # unmatched / forged
        note = " ".join(x for x in (target.note, verdict.diagnostic, verdict.note) if x)
        new_id = conn.execute(
            sa.insert(s.bounces).values(
                dedupe_key=p.key,
                received=now,
                source=f"{source} {p.raw.where}"[:500],
                kind=verdict.kind,
                detector=verdict.detector,
                status_code=verdict.status_code,
                recipient=verdict.recipient,
                edition_id=target.edition_id,
                subscriber_id=target.subscriber_id,
                newsletter=target.newsletter,
                action=action,
                effects=effects,
                note=note[:2000],
                raw=p.raw.data,
            )
        ).inserted_primary_key
        assert new_id is not None
        if effects.get("suppressed"):
            conn.execute(
                sa.update(s.suppressions)
                .where(s.suppressions.c.address_hash == effects["suppressed"])
                .values(bounce_id=int(new_id[0]))
            )
        return action, int(new_id[0]), target

    # ---- mapping ---------------------------------------------------------------------
    def target(self, conn: Connection, verdict: cl.Verdict, tokens: list[str], msg: Any) -> Target:
        if verdict.kind == "unsubscribe":
            found = self.tokens.verify(UNSUBSCRIBE, find_token(cl.unsubscribe_text(msg)))
            if found is None:
                return Target(note="unmatched: no valid unsubscribe token in the subject or body")
            return Target(subscriber_id=found[0], newsletter=found[1])
        candidates = list(tokens)
        for a in verdict.returned_addresses:
            hit, token = self.verp.match(a)
            if hit and token:
                candidates.append(token)
        if not candidates:
            return Target(note="unmatched: no VERP token (the bounce names no message of ours)")
        for token in candidates:
            ref = self.verp.verify(token)
            if ref is not None:
                return self._resolve(conn, ref)
        return Target(note="forged: the VERP token does not verify (altered or another key)")

    def _resolve(self, conn: Connection, ref: VerpRef) -> Target:
        if ref.queue_id is not None:
            row = conn.execute(
                sa.select(s.mail_queue.c.newsletter).where(s.mail_queue.c.id == ref.queue_id)
            ).first()
            return Target(queue_id=ref.queue_id, newsletter=row.newsletter if row else None)
        e = s.editions
        nl = conn.execute(sa.select(e.c.newsletter).where(e.c.id == ref.edition_id)).scalar()
        return Target(ref.edition_id, ref.subscriber_id, nl)

    # ---- effects ---------------------------------------------------------------------
    def apply(
        self, conn: Connection, verdict: cl.Verdict, target: Target, now: datetime
    ) -> tuple[Decision, dict[str, Any]]:
        effects: dict[str, Any] = {}
        if target.queue_id is not None:
            if verdict.kind in ("hard", "soft", "complaint"):
                q = s.mail_queue
                conn.execute(
                    sa.update(q)
                    .where(q.c.id == target.queue_id)
                    .values(status="bounced", last_error=f"{verdict.kind} bounce", updated=now)
                )
                effects["queue"] = target.queue_id
                return Decision("queued mail bounced"), effects
            return Decision("ignored"), effects
        if target.subscriber_id is None:
            return Decision("ignored"), effects
        sub = s.subscribers
        row = conn.execute(
            sa.select(sub.c.id, sub.c.email, sub.c.status, sub.c.hard_bounces).where(
                sub.c.id == target.subscriber_id
            )
        ).first()
        state = None
        if row is not None:
            b = s.bounces
            soft = conn.execute(
                sa.select(sa.func.count()).where(
                    b.c.subscriber_id == row.id,
                    b.c.kind == "soft",
                    b.c.undone.is_(None),
                    b.c.received > now - self.config.bounces.soft_window,
                )
            ).scalar_one()
            state = SubscriberState(row.status, int(row.hard_bounces), int(soft))
        decision = decide(verdict.kind, state, self.config.bounces)
        if row is None or decision.action == "ignored":
            return decision, effects
        if decision.count_hard:
            conn.execute(
                sa.update(sub).where(sub.c.id == row.id).values(hard_bounces=sub.c.hard_bounces + 1)
            )
            effects["hard_bounces"] = 1
        if decision.new_status and decision.new_status != row.status:
            conn.execute(
                sa.update(sub)
                .where(sub.c.id == row.id)
                .values(status=decision.new_status, updated=now)
            )
            effects["status"] = [row.status, decision.new_status]
        if decision.unsubscribe:
            t = s.subscriptions
            cond = [t.c.subscriber_id == row.id, t.c.status != "unsubscribed"]
            if decision.unsubscribe == "newsletter":
                cond.append(t.c.newsletter == (target.newsletter or ""))
            before = {
                r.newsletter: r.status
                for r in conn.execute(sa.select(t.c.newsletter, t.c.status).where(*cond))
            }
            if before:
                conn.execute(sa.update(t).where(*cond).values(status="unsubscribed", updated=now))
                effects["subscriptions"] = before
        if decision.suppress and suppress(
            conn,
            self.hasher,
            row.email,
            reason=decision.suppress,
            now=now,
            note=f"{verdict.kind} {verdict.status_code or ''}".strip(),
        ):
            effects["suppressed"] = self.hasher(row.email)
        return decision, effects


def ingest(
    config: Config,
    store: Store,
    messages: Iterable[RawMessage],
    *,
    source: str,
    now: datetime,
    on_stored: Callable[[RawMessage], None] | None = None,
) -> IngestReport:
    return Ingester(config, store).run(messages, source=source, now=now, on_stored=on_stored)
