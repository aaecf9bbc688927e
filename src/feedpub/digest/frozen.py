"""Reading a frozen edition back from the store: the number readers see, its date, and the
EditionBuilder that renders it (for sending, resuming and the web archive)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from feedpub import schema as s
from feedpub.config import Config, NewsletterConfig
from feedpub.delivery.outbox import edition_key
from feedpub.digest.build import EditionBuilder, EditionInfo, group_sections
from feedpub.digest.numbers import issue_number as issue_number
from feedpub.digest.render import Renderer
from feedpub.digest.tokens import Tokens
from feedpub.store import Store
from feedpub.types import ArticleStatus


def slot_time(slot: str, fallback: datetime) -> datetime:
    try:
        return datetime.strptime(slot, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except ValueError:
        return fallback


def load_builder(
    config: Config,
    store: Store,
    nl: NewsletterConfig,
    edition_id: int,
    tokens: Tokens | None,
    renderer: Renderer | None = None,
) -> EditionBuilder:
    e, ea = s.editions, s.edition_articles
    with store.read() as conn:
        row = conn.execute(sa.select(e).where(e.c.id == edition_id)).one()
        order = [
            (r.article_id, r.beat)
            for r in conn.execute(
                sa.select(ea.c.article_id, ea.c.beat)
                .where(ea.c.edition_id == edition_id)
                .order_by(ea.c.position)
            )
        ]
        ids = [aid for aid, _ in order]
        # A story retracted after the edition froze is left out of every message not yet
        # sent (and of the archive page): an editor's retraction beats the frozen edition.
        arts = (
            {
                a.id: a
                for a in store.load_articles(conn, s.articles.c.id.in_(ids))
                if a.status is not ArticleStatus.RETRACTED
            }
            if ids
            else {}
        )
        shown_number = issue_number(conn, row.newsletter, row.number)
    info = EditionInfo(
        id=row.id,
        newsletter=row.newsletter,
        slot=row.slot,
        key=edition_key(row.slot),
        number=shown_number,
        date=slot_time(row.slot, row.created),
        created=row.created,
    )
    sections = group_sections(config.newsletter_beats(nl), arts, order)
    return EditionBuilder(config, renderer or Renderer(config), nl, info, sections, tokens)


def subscriber_names(store: Store, ids: list[int]) -> dict[int, str]:
    sub = s.subscribers
    out: dict[int, str] = {}
    with store.read() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in conn.execute(sa.select(sub.c.id, sub.c.name).where(sub.c.id.in_(chunk))):
                out[r.id] = r.name
    return out


def edition_names(store: Store, edition_id: int) -> dict[int, str]:
    """Names of the edition's recipients (the address is frozen in the ledger; the name,
    used only in greetings and the To display name, is read when sending)."""
    sub, d = s.subscribers, s.deliveries
    with store.read() as conn:
        q = (
            sa.select(sub.c.id, sub.c.name)
            .join(d, d.c.subscriber_id == sub.c.id)
            .where(d.c.edition_id == edition_id)
        )
        return {r.id: r.name for r in conn.execute(q)}
