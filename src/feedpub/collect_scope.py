"""A hinted folder source read as far as it changed: only the changed folders' file stats.

When a hint (``feedpub publish``'s quiet record, the daemon's file events;
``feedpub.sources.walk.FolderHint``) vouches for most folders of a large content folder,
the collect walks only the others. Loading every file's recorded stats anyway cost more
than the rest of a one-article publish at 100,000 files (reading 100,000 rows, grouping
them by folder, comparing and writing them back). So the collect reads instead:

- for each folder the hint vouches for, how many files the store recorded directly in
  it: a folder whose count is not the hint's is not trusted (a file there was
  rejected, or the store moved on) and is walked. Not when the hint says the store is
  as a clean collect left it (``FolderHint.no_orphans``: nothing rejected, no other
  collect since): then every counted file has its row;
- the rows of the folders that are walked;
- the source's row count: when the trusted and the walked folders do not account for
  every row (rows of a folder that is gone), the whole table is read, as before. With
  ``no_orphans`` the count is the hint's own (``FolderHint.listed_files``, what the
  listing it stands on counted), sparing the query, a pass over the source's rows
  (50-84 ms at 100,000 files once the kernel has dropped the store's pages).

The listing is then *scoped*: ``SourceResult.unlisted`` counts the trusted folders'
files, present and unchanged, that are in neither ``unchanged_keys`` nor
``file_stats``, and ``feedpub.store_files.save_file_stats`` writes only the walked
folders' rows. What needs more is given it here, from the store: a decision that may
retract (it compares every stored article with the listing) or a listing parsed in
batches widens the listing to the whole table (:func:`widen`); a decision about a few
new or changed files learns which of the stored articles it looks at still have their
file in a trusted folder (:func:`resolve`).

On SQLite each count and each folder's rows are a range of the primary key; on
PostgreSQL one pass over the source's rows each (``feedpub.store_files``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from feedpub.sources.base import SourceContext, SourceResult
from feedpub.sources.walk import FolderHint, Scope, folder_of, recorded_sums
from feedpub.store import StoredArticleState
from feedpub.store_files import (
    folder_counts,
    folder_stats,
    load_stats,
    source_count,
    stats_of,
)

# Past this many folders to walk, the whole table is read: a range query per folder
# stops paying for itself long before (a rebuild of a large part of the archive).
MAX_WALKED = 64


def scoped(conn: Connection, source: str, hint: FolderHint) -> Scope | None:
    """The scope a hint allows, or None: read the whole table (see the module docstring)."""
    recorded = recorded_sums(hint)
    walked = set(hint.dirs) - set(recorded)
    if not recorded or len(walked) > MAX_WALKED:
        return None
    # A store left by a clean collect with none since (hint.no_orphans) holds a row for
    # every file the listing counted: its folders need no count (the total below still
    # has to agree). Otherwise each folder is counted.
    counts = None if hint.no_orphans else folder_counts(conn, source, recorded)
    trusted: dict[str, list[int]] = {}
    for folder, sums in recorded.items():
        if counts is None or counts[folder] == sums[0]:
            trusted[folder] = sums
        else:
            walked.add(folder)
    if len(walked) > MAX_WALKED:
        return None
    stats = folder_stats(conn, source, sorted(walked))
    # From a clean store the listing's count is the row count (FolderHint.listed_files).
    known = hint.listed_files if hint.no_orphans else None
    stored = known if known is not None else source_count(conn, source)
    if stored != sum(v[0] for v in trusted.values()) + len(stats):
        return None  # rows in folders neither trusted nor walked (a folder removed)
    return Scope(trusted, frozenset(walked), stats)


def widen(conn: Connection, result: SourceResult, ctx: SourceContext) -> None:
    """Make a scoped listing whole: the trusted folders' recorded files join the
    result as unchanged, and ``ctx.file_stats`` becomes the whole table (what the full
    walk would have read and found)."""
    scope = ctx.scope
    if scope is None:
        return
    everything = load_stats(conn, result.name)
    if result.status == "ok":  # the folder was walked (one not found lists nothing)
        for key, stat in everything.items():
            if folder_of(key) in scope.trusted:
                result.file_stats[key] = stat
                result.unchanged_keys.add(key)
    result.unlisted = 0
    ctx.file_stats = everything
    ctx.scope = None


def resolve(
    conn: Connection,
    result: SourceResult,
    ctx: SourceContext,
    stored: Iterable[StoredArticleState],
) -> None:
    """For a scoped listing, the stored articles of this source that a decision looks at
    and whose file lies in a trusted folder: those with a recorded file are present
    (they join ``unchanged_keys``, leaving ``unlisted``); the others are not."""
    scope = ctx.scope
    if scope is None:
        return
    keys = {
        st.source_key
        for st in stored
        if st.source == result.name
        and st.source_key not in result.unchanged_keys
        and folder_of(st.source_key) in scope.trusted
    }
    if not keys:
        return
    present = stats_of(conn, result.name, keys)
    result.unchanged_keys.update(present)
    result.unlisted -= len(present)
