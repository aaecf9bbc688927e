"""The store's tables (SQLAlchemy Core) and its versioned migrations.

Why a small versioned runner rather than Alembic: feedpub owns its whole schema,
ships as one package and must migrate itself on first use with no extra files or
commands (`alembic.ini`, env.py); each migration is a plain function run in the
same transaction that records the new version, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from feedpub import feed_counts


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as UTC on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; attach a time zone first")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, SQLAlchemy parses
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

beats = sa.Table(
    "beats",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("position", sa.Integer, nullable=False, default=0),
)

authors = sa.Table(
    "authors",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("bio", sa.Text, nullable=False, default=""),
    sa.Column("beat", sa.String(200), nullable=True),  # from a bio line "... covering BEAT"
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("uri", sa.Text, nullable=True),
)

articles = sa.Table(
    "articles",
    metadata,
    sa.Column("id", sa.String(500), primary_key=True),  # permanent id
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("source_key", sa.String(1000), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("slug", sa.String(500), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("content_html", sa.Text, nullable=False),
    sa.Column("reading_minutes", sa.Integer, nullable=False),
    sa.Column("beat", sa.String(200), nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("image_url", sa.Text, nullable=True),
    sa.Column("image_type", sa.String(100), nullable=True),
    sa.Column("image_length", sa.BigInteger, nullable=True),
    # The lead image's alt text (front matter image alt/caption) and size in pixels.
    sa.Column("image_alt", sa.Text, nullable=True),
    sa.Column("image_width", sa.Integer, nullable=True),
    sa.Column("image_height", sa.Integer, nullable=True),
    sa.Column("language", sa.String(35), nullable=True),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("changed_generation", sa.BigInteger, nullable=False),
    sa.Index("ix_articles_source_key", "source", "source_key", unique=True),
    sa.Index("ix_articles_url", "url"),
    sa.Index("ix_articles_status_published", "status", "published"),
    sa.Index("ix_articles_beat_published", "beat", "status", "published"),
    sa.Index("ix_articles_changed_generation", "changed_generation"),
    # Feeds: RFC 5005 archive order (first_seen, published, id); lets an incremental build
    # read only the open end of the sequence.
    sa.Index("ix_articles_archive_order", "first_seen", "published", "id"),
    # The same for one beat's feed: its open end, and its whole sequence in order, without
    # reading and sorting every article of the beat.
    sa.Index("ix_articles_beat_order", "beat", "first_seen", "published", "id"),
)

article_authors = sa.Table(
    "article_authors",
    metadata,
    sa.Column(
        "article_id",
        sa.String(500),
        sa.ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("author_slug", sa.String(200), sa.ForeignKey("authors.slug"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    # The article's archive key (articles.first_seen, .published), copied by every writer
    # of a link (the links are rewritten with the article): an author feed's open end is
    # then a range of ix_article_authors_order, not a lookup of each of the author's
    # articles (at 100,000 articles, 2,000 rows read from disk: 0.4 s once not cached).
    # Nullable only because ALTER TABLE ADD COLUMN needs it; migration 9 filled them.
    sa.Column("first_seen", UTCDateTime, nullable=True),
    sa.Column("published", UTCDateTime, nullable=True),
    sa.Index("ix_article_authors_author", "author_slug", "article_id"),
    sa.Index("ix_article_authors_order", "author_slug", "first_seen", "published", "article_id"),
)

# Per-file state of folder sources: lets a re-collect skip unchanged files by size+mtime.
source_files = sa.Table(
    "source_files",
    metadata,
    sa.Column("source", sa.String(500), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
)

# Per-source state of upstream sources (ETag, Last-Modified, moved URL, disabled...).
source_state = sa.Table(
    "source_state",
    metadata,
    sa.Column("source", sa.String(500), primary_key=True),
    sa.Column("key", sa.String(500), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Feeds: one row per output file, for incremental builds and archive pages.
feed_files = sa.Table(
    "feed_files",
    metadata,
    sa.Column("path", sa.String(1000), primary_key=True),  # relative to the output dir
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("updated", UTCDateTime, nullable=True),
    sa.Column("written_at", UTCDateTime, nullable=False),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # normalized
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(20), nullable=False),  # pending/active/unsubscribed/bounced
    sa.Column("hard_bounces", sa.Integer, nullable=False, default=0),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("newsletter", sa.String(200), primary_key=True),
    sa.Column("beats", sa.JSON, nullable=False),  # [] = all of the newsletter's beats
    sa.Column("status", sa.String(20), nullable=False),  # active/unsubscribed
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index("ix_subscriptions_newsletter", "newsletter", "status"),
)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("newsletter", sa.String(200), nullable=False),
    sa.Column("slot", sa.String(100), nullable=False),  # schedule slot or manual key
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # frozen/sending/paused/sent/skipped
    sa.Column("cutoff", UTCDateTime, nullable=False),  # articles published up to here
    sa.Column("since", UTCDateTime, nullable=False),  # ...and after here
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("finished", UTCDateTime, nullable=True),
    sa.Column("article_count", sa.Integer, nullable=False, default=0),
    sa.Column("recipient_count", sa.Integer, nullable=False, default=0),
    sa.UniqueConstraint("newsletter", "slot", name="uq_editions_slot"),
    sa.UniqueConstraint("newsletter", "number", name="uq_editions_number"),
)

edition_articles = sa.Table(
    "edition_articles",
    metadata,
    sa.Column(
        "edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("article_id", sa.String(500), sa.ForeignKey("articles.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("beat", sa.String(200), nullable=True),
    sa.Index("ix_edition_articles_article", "article_id"),
)

# The delivery ledger: one row per (edition, subscriber); makes sending resumable.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column(
        "edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),  # address frozen with the edition
    sa.Column("selection", sa.Text, nullable=False),  # beats this subscriber gets, ";"-joined
    sa.Column("status", sa.String(20), nullable=False),  # queued/sending/sent/failed/bounced
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("message_id", sa.String(500), nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    # "host/pid/start" of the process whose claim put the row in "sending" (None otherwise):
    # a restart on the same host takes over a dead claimer's rows at once.
    sa.Column("claimed_by", sa.String(300), nullable=True),
    # Fenced claims (delivery/claims.py): every claim bumps claim_token; the claimer renews
    # lease_until while the message is in flight; a result is written only by the holder of
    # the current token, so a takeover (lease run out: owner dead or stalled) fences it out.
    sa.Column("claim_token", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Index("ix_deliveries_status", "edition_id", "status", "next_attempt"),
    sa.Index("ix_deliveries_claimed_by", "claimed_by"),
)

# Runs of collect/build/digest for `feedpub status`.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(50), nullable=False),  # collect/build/digest
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("finished", UTCDateTime, nullable=True),
    sa.Column("ok", sa.Boolean, nullable=True),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Index("ix_runs_kind", "kind", "started"),
)


# ---- the subscriber lifecycle (sign-up, suppression, bounces; feedpub.lifecycle) ----------
# Sign-up requests (double opt-in): one row per confirmation asked for. A confirmed row is
# the consent record (when, from which address, which form and wording); a pending row
# that is never confirmed is deleted when it expires.
signups = sa.Table(
    "signups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False),  # normalized
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("newsletter", sa.String(200), nullable=False),
    sa.Column("beats", sa.JSON, nullable=False),  # [] = all of the newsletter's beats
    sa.Column("status", sa.String(20), nullable=False),  # pending/confirmed
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),  # the sign-up POST's client ([signup] store_ip)
    sa.Column("form", sa.String(200), nullable=False),  # which form: "page", "embed", "api"...
    sa.Column("wording", sa.String(100), nullable=False),  # consent wording version
    sa.Column("confirmed", UTCDateTime, nullable=True),
    sa.Column("confirm_ip", sa.String(64), nullable=True),
    sa.Index("ix_signups_email", "email", "newsletter"),
    sa.Index("ix_signups_status_expires", "status", "expires"),
)

# Mail that is not an edition (confirmation, welcome): queued by the web request, sent by
# the daemon or `digest send` (never inline in an HTTP request).
mail_queue = sa.Table(
    "mail_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),  # confirm/welcome
    sa.Column("newsletter", sa.String(200), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("signup_id", sa.Integer, nullable=True),
    sa.Column("subscriber_id", sa.Integer, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # queued/sending/sent/failed/bounced
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Index("ix_mail_queue_status", "status", "next_attempt"),
    sa.Index("ix_mail_queue_recipient", "recipient"),
)

# Fixed-window counters shared by every `feedpub serve` process (sign-up rate limits).
rate_counters = sa.Table(
    "rate_counters",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # "ip:..." / "addr:<keyed hash>"
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Index("ix_rate_counters_window", "window_start"),
)

# Relay send rates shared by every sending instance (delivery/sharedrate.py): the next free
# per-second slot of each relay, and its sends per minute for the hourly limit.
relay_pace = sa.Table(
    "relay_pace",
    metadata,
    sa.Column("relay", sa.String(300), primary_key=True),  # "host:port"
    sa.Column("next_at", sa.Float, nullable=False),  # epoch seconds, the store's clock
)

relay_sends = sa.Table(
    "relay_sends",
    metadata,
    sa.Column("relay", sa.String(300), primary_key=True),
    sa.Column("minute", sa.Integer, primary_key=True),  # epoch seconds // 60
    sa.Column("sends", sa.Integer, nullable=False),
)

# Addresses never to mail again: complaints, hard bounces, erased people, operator's adds.
# Keyed by an HMAC of the address; the address itself is kept except for erased people.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("address_hash", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=True),  # None once erased
    sa.Column("reason", sa.String(20), nullable=False),  # complaint/hard-bounce/erased/manual
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("bounce_id", sa.Integer, nullable=True),  # the bounce message that caused it
    sa.Column("note", sa.Text, nullable=False, default=""),
)

# Every message `bounces ingest` took from the mailbox (ours only), raw, with what it did.
bounces = sa.Table(
    "bounces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),  # Message-ID or bytes
    sa.Column("received", UTCDateTime, nullable=False),  # when ingested
    sa.Column("source", sa.String(500), nullable=False),  # stdin / maildir:... / imap:...
    sa.Column("kind", sa.String(20), nullable=False),  # hard/soft/complaint/unsubscribe/...
    sa.Column("detector", sa.String(50), nullable=False),  # dsn/arf/flufl/auto-submitted...
    sa.Column("status_code", sa.String(20), nullable=True),  # RFC 3463, e.g. 5.1.1
    sa.Column("recipient", sa.String(320), nullable=True),  # the address that failed
    sa.Column("edition_id", sa.Integer, nullable=True),
    sa.Column("subscriber_id", sa.Integer, nullable=True),
    sa.Column("newsletter", sa.String(200), nullable=True),
    sa.Column("action", sa.String(40), nullable=False),  # what was done (or "ignored")
    sa.Column("effects", sa.JSON, nullable=False),  # what changed, for `bounces undo`
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("undone", UTCDateTime, nullable=True),
    sa.Column("raw", sa.LargeBinary, nullable=True),  # the message as received (audit)
    sa.Index("ix_bounces_subscriber", "subscriber_id", "kind", "received"),
    sa.Index("ix_bounces_edition", "edition_id", "kind"),
)

# Leader leases of `feedpub run` instances sharing one PostgreSQL store (feedpub.leases):
# one row per lease name; ``token`` (the fencing token) grows at every change of holder.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=True),  # instance id; None once released
    sa.Column("host", sa.String(255), nullable=False, default=""),
    sa.Column("pid", sa.Integer, nullable=False, default=0),
    sa.Column("token", sa.BigInteger, nullable=False, default=0),
    sa.Column("since", UTCDateTime, nullable=True),  # when this holder took it
    sa.Column("renewed", UTCDateTime, nullable=True),
    sa.Column("expires", UTCDateTime, nullable=True),
)

# Complaint reports (ARF) often redact the recipient: they are mapped through the returned
# message's Message-ID, which the ledger keeps.
sa.Index("ix_deliveries_message_id", deliveries.c.message_id)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn)


def ensure_schema(conn: Connection, md: sa.MetaData = metadata) -> None:
    """Bring a store up to ``md``: create missing tables, add missing columns and indexes.
    Idempotent, so a step may run on a store whose v1 already created the newest tables
    (v1 is ``create_all`` of today's metadata). A column added to an existing table must be
    nullable or have a ``server_default`` (what ALTER TABLE ADD COLUMN allows everywhere).
    Renames and data changes need a step of their own."""
    insp = sa.inspect(conn)
    existing = set(insp.get_table_names())
    prep = conn.dialect.identifier_preparer
    for table in md.sorted_tables:
        if table.name not in existing:
            table.create(conn)
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name not in have:
                ddl = sa.schema.CreateColumn(col).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {ddl}")
        indexes = {i["name"] for i in insp.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)


# Append-only: (version, migration). Never edit a released migration; add the next one.
# Adding tables, nullable columns or indexes: declare them above and append a step that
# runs ``ensure_schema``.
def _v3_detect_languages(conn: Connection) -> None:
    """Articles stored before languages were detected: detect theirs now (only where no
    language was stated), so an Arabic story already published gets ``ar`` without an
    edit. Batched by id: bounded memory on any store."""
    from feedpub.language import article_language

    a = articles
    last = ""
    while True:
        rows = conn.execute(
            sa.select(a.c.id, a.c.title, a.c.summary, a.c.content_html)
            .where(a.c.language.is_(None), a.c.id > last)
            .order_by(a.c.id)
            .limit(500)
        ).all()
        if not rows:
            return
        for r in rows:
            lang = article_language(None, r.title, r.summary, r.content_html)
            if lang:
                conn.execute(sa.update(a).where(a.c.id == r.id).values(language=lang))
        last = rows[-1].id


def _v9_link_keys(conn: Connection) -> None:
    """article_authors.first_seen and .published: added, then copied from the articles."""
    ensure_schema(conn)
    aa, a = article_authors, articles

    def of_article(column: sa.Column[Any]) -> Any:
        return sa.select(column).where(a.c.id == aa.c.article_id).scalar_subquery()

    conn.execute(
        sa.update(aa).values(
            first_seen=of_article(a.c.first_seen), published=of_article(a.c.published)
        )
    )


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1),
    (2, ensure_schema),
    (3, _v3_detect_languages),
    (4, ensure_schema),  # fenced claims: deliveries.claim_token, lease_until (and any later)
    (5, ensure_schema),  # leases: one leader among several `feedpub run` (PostgreSQL)
    (6, ensure_schema),  # shared relay rate limits: relay_pace, relay_sends
    (7, ensure_schema),  # ix_articles_beat_order: a beat feed's open end in index order
    (8, feed_counts.install),  # feed_count_deltas and its triggers: counts without a scan
    (9, _v9_link_keys),  # article_authors' archive keys: an author feed's open end by index
]

SCHEMA_VERSION = MIGRATIONS[-1][0]
