"""The store: the single source of truth (SQLite by default, PostgreSQL later).

It opens the database, migrates it, hands out transactions, keeps the change
generation (bumped in the same transaction as every content change, so a later
stage tells in O(1) that nothing changed) and reads/writes articles. Other stages
keep their own queries in their own modules and use ``Store.begin()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feedpub import schema as s
from feedpub.errors import ConfigError, StoreError
from feedpub.store_bulk import relink_statement
from feedpub.types import Article, ArticleStatus, Image


@dataclass(frozen=True, slots=True)
class StoredArticleState:
    """What change detection needs to know about a stored article."""

    id: str
    source: str
    source_key: str
    url: str
    content_hash: str
    status: ArticleStatus
    published: datetime
    updated: datetime
    beat: str | None = None


def _sqlite_pragmas(synchronous: str) -> Any:
    # FULL (the default): every commit is on disk before COMMIT returns, so the delivery
    # ledger's word (claimed before a message leaves, sent right after) survives a power
    # cut too. In WAL mode NORMAL may lose the last commits at a power cut (never
    # corrupting the file): rows marked sent would be queued again and mailed twice.
    mode = "FULL" if synchronous.lower() == "full" else "NORMAL"

    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={mode}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return pragmas


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at BEGIN so two processes never deadlock upgrading a read lock.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    def __init__(self, url: str, *, echo: bool = False, synchronous: str = "full") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                parent = Path(path).parent
                if not parent.exists():
                    # A configuration mistake, not a store fault: exit 2, so a service
                    # manager does not restart-loop on it.
                    raise ConfigError(
                        f"folder {parent} for the database {path} does not exist; "
                        "create it or fix [store] url",
                        key="store.url",
                    )
        try:
            self.engine: Engine = sa.create_engine(url, echo=echo)
        except Exception as e:  # bad URL, missing driver
            raise StoreError(f"[store] url {url!r}: {e}") from None
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(synchronous))
            # Let SQLAlchemy, not pysqlite, issue BEGIN (pysqlite's implicit BEGIN is lazy).
            sa.event.listen(
                self.engine, "connect", lambda c, _r: setattr(c, "isolation_level", None)
            )
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self.migrate()

    @classmethod
    def for_reading(cls, url: str) -> Store:
        """Another process's view of a store that is open and migrated already (a build's
        worker): no migration and no BEGIN IMMEDIATE, which would wait for the lock the
        build holds; on SQLite (WAL) its reads see the last commit."""
        self = cls.__new__(cls)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(url)
        return self

    # ---- lifecycle -------------------------------------------------------------------
    def migrate(self) -> None:
        try:
            with self.engine.begin() as conn:
                s.meta.create(conn, checkfirst=True)
                row = conn.execute(
                    sa.select(s.meta.c.value).where(s.meta.c.key == "schema_version")
                ).scalar_one_or_none()
                current = int(row) if row is not None else 0
                if current > s.SCHEMA_VERSION:
                    raise StoreError(
                        f"the store has schema version {current}, newer than this feedpub "
                        f"({s.SCHEMA_VERSION}); upgrade feedpub"
                    )
                for version, step in s.MIGRATIONS:
                    if version > current:
                        step(conn)
                        _set_meta(conn, "schema_version", str(version))
                if row is None:
                    _set_meta(conn, "generation", "0")
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(f"cannot open the store {self.url}: {e}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One write transaction (on SQLite: BEGIN IMMEDIATE)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def began(self, now: datetime) -> datetime:
        """When this store was first used (the first collect or build, given its ``now``):
        the date of a feed that has no item yet. Recorded once; later calls read it."""
        with self.read() as conn:
            known = get_meta(conn, "created")
        if known is None:
            with self.begin() as conn:
                known = get_meta(conn, "created")
                if known is None:
                    known = now.astimezone(UTC).isoformat(timespec="seconds")
                    _set_meta(conn, "created", known)
        return datetime.fromisoformat(known)

    # ---- generation ------------------------------------------------------------------
    def generation(self, conn: Connection | None = None) -> int:
        if conn is None:
            with self.read() as c:
                return self.generation(c)
        return int(get_meta(conn, "generation") or 0)

    @staticmethod
    def bump_generation(conn: Connection) -> int:
        conn.execute(
            sa.update(s.meta)
            .where(s.meta.c.key == "generation")
            .values(value=sa.cast(sa.cast(s.meta.c.value, sa.Integer) + 1, sa.Text))
        )
        return int(get_meta(conn, "generation") or 0)

    # ---- articles --------------------------------------------------------------------
    def article_states(
        self, conn: Connection, source: str | None = None, where: Any = None
    ) -> list[StoredArticleState]:
        """What change detection needs of every stored article (of one source, and
        matching a SQLAlchemy condition, if given)."""
        a = s.articles
        q = sa.select(
            a.c.id, a.c.source, a.c.source_key, a.c.url, a.c.content_hash, a.c.status,
            a.c.published, a.c.updated, a.c.beat,
        )  # fmt: skip
        if source is not None:
            q = q.where(a.c.source == source)
        if where is not None:
            q = q.where(where)
        return [
            StoredArticleState(
                r.id,
                r.source,
                r.source_key,
                r.url,
                r.content_hash,
                ArticleStatus(r.status),
                r.published,
                r.updated,
                r.beat,
            )
            for r in conn.execute(q)
        ]

    def upsert_article(
        self,
        conn: Connection,
        article: Article,
        *,
        source: str,
        source_key: str,
        content_hash: str,
        first_seen: datetime,
        generation: int,
        insert: bool,
    ) -> None:
        values = {
            "source": source,
            "source_key": source_key,
            "url": article.url,
            "slug": article.slug,
            "title": article.title,
            "summary": article.summary,
            "content_html": article.content_html,
            "reading_minutes": article.reading_minutes,
            "beat": article.beat,
            "tags": list(article.tags),
            "image_url": article.image.url if article.image else None,
            "image_type": article.image.type if article.image else None,
            "image_length": article.image.length if article.image else None,
            "image_alt": article.image.alt if article.image else None,
            "image_width": article.image.width if article.image else None,
            "image_height": article.image.height if article.image else None,
            "language": article.language,
            "published": article.published,
            "updated": article.updated,
            "status": article.status.value,
            "content_hash": content_hash,
            "changed_generation": generation,
        }
        if insert:
            conn.execute(
                sa.insert(s.articles).values(id=article.id, first_seen=first_seen, **values)
            )
        else:
            conn.execute(
                sa.update(s.articles).where(s.articles.c.id == article.id).values(**values)
            )
            conn.execute(
                sa.delete(s.article_authors).where(s.article_authors.c.article_id == article.id)
            )
        if article.author_slugs:
            conn.execute(
                relink_statement(),
                [
                    {"b_id": article.id, "b_slug": slug, "b_position": i}
                    for i, slug in enumerate(dict.fromkeys(article.author_slugs))
                ],
            )

    def set_status(
        self,
        conn: Connection,
        article_id: str,
        status: ArticleStatus,
        generation: int,
        updated: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "changed_generation": generation}
        if updated is not None:
            values["updated"] = updated
        conn.execute(sa.update(s.articles).where(s.articles.c.id == article_id).values(**values))

    def upsert_author(
        self,
        conn: Connection,
        slug: str,
        name: str,
        *,
        bio: str | None = None,
        beat: str | None = None,
        email: str | None = None,
        uri: str | None = None,
    ) -> None:
        row = conn.execute(sa.select(s.authors).where(s.authors.c.slug == slug)).first()
        values: dict[str, Any] = {"name": name}
        if bio is not None:
            values["bio"] = bio
        if beat is not None:
            values["beat"] = beat
        if email is not None:
            values["email"] = email
        if uri is not None:
            values["uri"] = uri
        if row is None:
            values.setdefault("bio", "")
            conn.execute(sa.insert(s.authors).values(slug=slug, **values))
        elif any(getattr(row, k) != v for k, v in values.items()):
            conn.execute(sa.update(s.authors).where(s.authors.c.slug == slug).values(**values))

    def author_beats(self, conn: Connection) -> dict[str, str]:
        """author slug -> beat slug learned from bio lines."""
        return {
            r.slug: r.beat
            for r in conn.execute(sa.select(s.authors.c.slug, s.authors.c.beat)).all()
            if r.beat
        }

    def sync_beats(self, conn: Connection, beats: Sequence[tuple[str, str, str]]) -> bool:
        """Make the beats table match the configuration. Returns True when it changed."""
        existing = {r.slug: r for r in conn.execute(sa.select(s.beats))}
        changed = False
        for pos, (slug, title, description) in enumerate(beats):
            row = existing.pop(slug, None)
            values = {"title": title, "description": description, "position": pos}
            if row is None:
                conn.execute(sa.insert(s.beats).values(slug=slug, **values))
                changed = True
            elif (row.title, row.description, row.position) != (title, description, pos):
                conn.execute(sa.update(s.beats).where(s.beats.c.slug == slug).values(**values))
                changed = True
        for slug in existing:
            conn.execute(sa.delete(s.beats).where(s.beats.c.slug == slug))
            changed = True
        return changed

    def load_articles(
        self,
        conn: Connection,
        where: Any = None,
        *,
        order_newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Article]:
        """Articles (with their authors) matching a SQLAlchemy condition."""
        a = s.articles
        q = sa.select(a)
        if where is not None:
            q = q.where(where)
        if order_newest_first:
            q = q.order_by(a.c.published.desc(), a.c.id.desc())
        else:
            q = q.order_by(a.c.published, a.c.id)
        if limit is not None:
            q = q.limit(limit).offset(offset)
        rows = conn.execute(q).all()
        if not rows:
            return []
        by_article: dict[str, list[tuple[int, str, str]]] = {}
        ids = [r.id for r in rows]
        for chunk in _chunks(ids, 500):
            for r in conn.execute(
                sa.select(
                    s.article_authors.c.article_id,
                    s.article_authors.c.position,
                    s.authors.c.slug,
                    s.authors.c.name,
                )
                .join(s.authors, s.authors.c.slug == s.article_authors.c.author_slug)
                .where(s.article_authors.c.article_id.in_(chunk))
            ):
                by_article.setdefault(r.article_id, []).append((r.position, r.slug, r.name))
        out = []
        for r in rows:
            auth = sorted(by_article.get(r.id, []))
            out.append(
                Article(
                    id=r.id,
                    url=r.url,
                    slug=r.slug,
                    title=r.title,
                    authors=tuple(n for _, _, n in auth),
                    author_slugs=tuple(sl for _, sl, _ in auth),
                    beat=r.beat,
                    tags=tuple(r.tags or ()),
                    published=r.published,
                    updated=r.updated,
                    summary=r.summary,
                    content_html=r.content_html,
                    reading_minutes=r.reading_minutes,
                    status=ArticleStatus(r.status),
                    image=Image(
                        r.image_url,
                        r.image_type,
                        r.image_length,
                        r.image_alt,
                        r.image_width,
                        r.image_height,
                    )
                    if r.image_url
                    else None,
                    language=r.language,
                    changed_generation=r.changed_generation,
                    first_seen=r.first_seen,
                )
            )
        return out

    # ---- run log ---------------------------------------------------------------------
    def record_run(
        self, kind: str, started: datetime, finished: datetime, ok: bool, summary: dict[str, Any]
    ) -> int:
        """Record a run; its id (ids grow: a later run of any process has a larger one)."""
        with self.begin() as conn:
            res = conn.execute(
                sa.insert(s.runs).values(
                    kind=kind,
                    started=started,
                    finished=finished,
                    ok=ok,
                    summary=json.loads(json.dumps(summary, default=str)),
                )
            )
            key = res.inserted_primary_key
            assert key is not None
            return int(key[0])

    def last_run_id(self, kind: str) -> int | None:
        """The id of the latest run of ``kind`` (by any process), without its summary."""
        with self.read() as conn:
            return conn.execute(
                sa.select(sa.func.max(s.runs.c.id)).where(s.runs.c.kind == kind)
            ).scalar_one_or_none()

    def last_run(self, kind: str) -> dict[str, Any] | None:
        with self.read() as conn:
            r = conn.execute(
                sa.select(s.runs).where(s.runs.c.kind == kind).order_by(s.runs.c.id.desc()).limit(1)
            ).first()
        return dict(r._mapping) if r else None


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(sa.select(s.meta.c.value).where(s.meta.c.key == key)).scalar_one_or_none()


def _set_meta(conn: Connection, key: str, value: str) -> None:
    updated = conn.execute(sa.update(s.meta).where(s.meta.c.key == key).values(value=value))
    if updated.rowcount == 0:
        conn.execute(sa.insert(s.meta).values(key=key, value=value))


set_meta = _set_meta


def _chunks(items: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
