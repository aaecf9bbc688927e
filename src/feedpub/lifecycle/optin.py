"""Double opt-in: a sign-up request stores the address ``pending`` and queues a
confirmation mail; the signed link in it, POSTed, confirms and records consent.

What the web layer shows is decided elsewhere; here every outcome of a well-formed
request (new, pending, active, unsubscribed, suppressed, mail limit reached, honeypot
filled) is reported to the caller, which answers them all the same (no enumeration).

- A brand-new address gets a ``pending`` subscriber and ``pending`` subscriptions (which
  nothing sends to); an existing subscriber is left exactly as they are until they
  confirm (an active reader's new beats apply only after confirming).
- Confirmation tokens are ``{signup id}.{expiry}.{mac}`` (HMAC under the token key):
  checked without a read, then against the row. They expire after ``[signup]
  confirm_within`` (default 7 days); a pending request never confirmed is deleted then,
  with its pending subscriber.
- Consent: the confirmed row keeps when it was asked and confirmed, from which client
  address (``[signup] store_ip``), through which form and under which wording version.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpub import schema as s
from feedpub.config import Config
from feedpub.digest import subscribers as subs
from feedpub.digest.tokens import Tokens
from feedpub.lifecycle import mailqueue, ratelimit
from feedpub.lifecycle.suppression import AddressHasher, is_suppressed

CONFIRM = "confirm"
FORMS = ("page", "embed", "api")
MAX_FORM = 50

Outcome = Literal["queued", "ip-limited", "address-limited", "suppressed", "honeypot"]


def wording_version(config: Config) -> str:
    """``[signup] wording_version``, else a short hash of the consent text (so editing the
    text gives new consents a new version by itself)."""
    if config.signup.wording_version:
        return config.signup.wording_version
    digest = hashlib.sha256(config.signup.consent_text.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:12]}"


@dataclass(frozen=True, slots=True)
class SignupRequest:
    """A validated sign-up (see :func:`validate`)."""

    email: str  # normalized
    name: str
    newsletter: str
    beats: tuple[str, ...]  # () = all
    form: str
    ip: str
    honeypot: bool = False


def validate(
    config: Config,
    *,
    email: str,
    name: str,
    newsletter: str,
    beats: Sequence[str],
    form: str,
    ip: str,
    honeypot: str = "",
) -> SignupRequest:
    """Check what the reader typed. SubscriberError says what is wrong (the same for any
    address state: it depends on the input alone)."""
    addr = subs.normalize_email(email)
    nm = subs.clean_name(name)
    chosen = subs.parse_beats(config, newsletter.strip(), list(beats))
    nl_beats = config.newsletter_beats(config.newsletter(newsletter.strip()))
    if set(chosen) == set(nl_beats):
        chosen = ()  # every beat ticked: every beat, including ones added later
    form_name = "".join(c for c in form.strip() if c.isalnum() or c in "-_:.")[:MAX_FORM]
    return SignupRequest(
        addr,
        nm,
        newsletter.strip(),
        chosen,
        form_name or "page",
        ip,
        honeypot=bool(honeypot.strip()),
    )


def request_signup(
    config: Config,
    conn: Connection,
    hasher: AddressHasher,
    req: SignupRequest,
    now: datetime,
) -> tuple[Outcome, int | None]:
    """Record a sign-up and queue its confirmation mail, in the caller's transaction.
    Returns the outcome and the sign-up id (None when nothing was queued)."""
    limits = ratelimit.Limits(
        config.signup.max_per_ip_per_hour, config.signup.max_mails_per_address_per_day
    )
    ip_hits = ratelimit.hit(conn, ratelimit.client_key(req.ip), ratelimit.hour_window(now))
    if ratelimit.decide(ip_hits, None, limits) != "ok":
        return "ip-limited", None
    if req.honeypot:
        return "honeypot", None
    key = hasher(req.email)
    if is_suppressed(conn, key):
        return "suppressed", None
    addr_hits = ratelimit.hit(conn, "addr:" + key, ratelimit.day_window(now))
    if ratelimit.decide(ip_hits, addr_hits, limits) != "ok":
        return "address-limited", None
    _store_pending(conn, req, now)
    signup_id = conn.execute(
        sa.insert(s.signups).values(
            email=req.email,
            name=req.name,
            newsletter=req.newsletter,
            beats=list(req.beats),
            status="pending",
            created=now,
            expires=now + config.signup.confirm_within,
            ip=req.ip if config.signup.store_ip else None,
            form=req.form,
            wording=wording_version(config),
        )
    ).inserted_primary_key
    assert signup_id is not None
    sid = int(signup_id[0])
    mailqueue.enqueue(conn, "confirm", req.newsletter, req.email, now=now, signup_id=sid)
    return "queued", sid


def _store_pending(conn: Connection, req: SignupRequest, now: datetime) -> None:
    """A new address becomes a pending subscriber; anyone else is left untouched."""
    sub, subs_t = s.subscribers, s.subscriptions
    row = conn.execute(sa.select(sub.c.id, sub.c.status).where(sub.c.email == req.email)).first()
    if row is None:
        new_id = conn.execute(
            sa.insert(sub).values(
                email=req.email,
                name=req.name,
                status="pending",
                hard_bounces=0,
                created=now,
                updated=now,
            )
        ).inserted_primary_key
        assert new_id is not None
        sid = int(new_id[0])
    elif row.status == "pending":
        sid = int(row.id)
    else:
        return
    have = conn.execute(
        sa.select(subs_t.c.newsletter).where(
            subs_t.c.subscriber_id == sid, subs_t.c.newsletter == req.newsletter
        )
    ).first()
    if have is None:
        conn.execute(
            sa.insert(subs_t).values(
                subscriber_id=sid,
                newsletter=req.newsletter,
                beats=list(req.beats),
                status="pending",
                created=now,
                updated=now,
            )
        )


# ---- confirmation tokens ---------------------------------------------------------------
def make_token(tokens: Tokens, signup_id: int, expires: datetime) -> str:
    epoch = int(expires.timestamp())
    return f"{signup_id}.{epoch}.{tokens.mac(CONFIRM, signup_id, str(epoch))}"


def parse_token(tokens: Tokens, token: str) -> tuple[int, datetime] | None:
    """(sign-up id, expiry) of a genuine token (its age is not judged here)."""
    token = token.strip()
    if not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    sid, epoch = int(parts[0]), parts[1]
    if not hmac.compare_digest(tokens.mac(CONFIRM, sid, epoch), parts[2]):
        return None
    return sid, datetime.fromtimestamp(int(epoch), UTC)


State = Literal["ok", "confirmed", "expired", "invalid", "suppressed"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    state: State
    newsletter: str | None = None
    subscriber_id: int | None = None  # once confirmed (for the preferences link)
    changed: bool = False  # this request confirmed it (not an earlier one)


def look(conn: Connection, tokens: Tokens, token: str, now: datetime) -> Confirmation:
    """What a GET of the confirmation link shows (changes nothing)."""
    found = parse_token(tokens, token)
    if found is None:
        return Confirmation("invalid")
    sid, expires = found
    row = conn.execute(sa.select(s.signups).where(s.signups.c.id == sid)).first()
    if row is None:
        return Confirmation("expired" if now > expires else "invalid")
    if row.status == "confirmed":
        return Confirmation("confirmed", row.newsletter, _subscriber_id(conn, row.email))
    if now > row.expires:
        return Confirmation("expired", row.newsletter)
    return Confirmation("ok", row.newsletter)


def _subscriber_id(conn: Connection, email: str) -> int | None:
    found = conn.execute(
        sa.select(s.subscribers.c.id).where(s.subscribers.c.email == email)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def confirm(
    config: Config,
    conn: Connection,
    hasher: AddressHasher,
    tokens: Tokens,
    token: str,
    *,
    ip: str,
    now: datetime,
) -> Confirmation:
    """POST of the confirmation link: subscribe (or update the beats of) the address and
    record the consent, in the caller's transaction. Confirming twice is harmless."""
    seen = look(conn, tokens, token, now)
    if seen.state != "ok":
        return seen
    found = parse_token(tokens, token)
    assert found is not None
    row = conn.execute(sa.select(s.signups).where(s.signups.c.id == found[0])).one()
    if is_suppressed(conn, hasher(row.email)):
        return Confirmation("suppressed", row.newsletter)
    claimed = conn.execute(
        sa.update(s.signups)
        .where(s.signups.c.id == row.id, s.signups.c.status == "pending")
        .values(
            status="confirmed",
            confirmed=now,
            confirm_ip=ip if config.signup.store_ip else None,
        )
    ).rowcount
    if not claimed:  # confirmed by a concurrent request meanwhile
        return Confirmation("confirmed", row.newsletter, _subscriber_id(conn, row.email))
    subs.upsert_subscription(
        conn,
        email=row.email,
        name=row.name,
        newsletter=row.newsletter,
        beats=tuple(row.beats or ()),
        now=now,
        status="active",
        reactivate=True,
    )
    sid = _subscriber_id(conn, row.email)
    assert sid is not None
    # The address works (the reader opened our mail): earlier bounces are forgiven.
    conn.execute(sa.update(s.subscribers).where(s.subscribers.c.id == sid).values(hard_bounces=0))
    if config.signup.welcome:
        mailqueue.enqueue(conn, "welcome", row.newsletter, row.email, now=now, subscriber_id=sid)
    return Confirmation("ok", row.newsletter, sid, changed=True)


def expire_pending(conn: Connection, now: datetime) -> int:
    """Delete sign-ups never confirmed in time, their unsent confirmation mail and the
    pending subscribers nothing is left pending for. Returns the sign-ups deleted."""
    su, sub, q = s.signups, s.subscribers, s.mail_queue
    expired = sa.select(su.c.id).where(su.c.status == "pending", su.c.expires < now)
    conn.execute(
        sa.delete(q).where(q.c.signup_id.in_(expired), q.c.status.in_(("queued", "failed")))
    )
    n = int(
        conn.execute(sa.delete(su).where(su.c.status == "pending", su.c.expires < now)).rowcount
        or 0
    )
    still_pending = sa.select(su.c.email).where(su.c.status == "pending")
    gone = (
        conn.execute(
            sa.select(sub.c.id).where(sub.c.status == "pending", sub.c.email.not_in(still_pending))
        )
        .scalars()
        .all()
    )
    for i in range(0, len(gone), 500):
        chunk = list(gone[i : i + 500])
        conn.execute(sa.delete(s.subscriptions).where(s.subscriptions.c.subscriber_id.in_(chunk)))
        conn.execute(sa.delete(sub).where(sub.c.id.in_(chunk)))
    return n
