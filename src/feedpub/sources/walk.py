"""Walking a content folder: which files are content, and a fingerprint of the listing.

Light on purpose (os only): ``feedpub publish`` walks the folder before it imports the
parsers, the database layer or the configuration models (``feedpub.quiet``).

The fingerprint of a folder holds, for each directory in it, the number of content files
directly in it, the sums of their sizes and mtimes (nanoseconds) and the directory's own
mtime. A file written in place changes its mtime; a file created, deleted or renamed
changes the mtime of the directory holding it (hidden and editor temp files too: that costs one
full collect, never a missed change). Two changes that cancel out exactly, to the
nanosecond, would go unseen; so would a file edited without changing its size within
one mtime tick, as the per-file comparison never saw it either (docs/performance.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")
SKIP_PREFIXES = (".", "_")  # hidden files, editor temp files, _drafts folders
# The fingerprint's walkers ``stat`` each file by its name in its open directory
# (``fstatat``) rather than by its full path: the kernel does not look the directories up
# again for every file, and no path string is built per file (about 10 % of the walk).
_BY_FD = os.scandir in os.supports_fd and os.stat in os.supports_dir_fd


Fingerprint = dict[
    str, str
]  # folder (relative, "" or "a/b/") -> its sums, see the module docstring


@dataclass
class Tally:
    """Sums over a walk, folder by folder: see the module docstring."""

    dirs: dict[str, list[int]] = field(default_factory=dict)  # [files, size, mtime, dir mtime]
    failed: bool = False  # a folder or file could not be listed or stat-ed

    def fingerprint(self) -> Fingerprint | None:
        """The folder's fingerprint, or None when some of it could not be read."""
        if self.failed:
            return None
        return {d: ":".join(map(str, v)) for d, v in self.dirs.items()}


def files_in(fp: Fingerprint) -> int:
    """How many content files a fingerprint counts."""
    return sum(int(v.split(":", 1)[0]) for v in fp.values())


def dirs_moved(root: str, fp: Fingerprint) -> bool:
    """Whether a directory of ``fp`` has an mtime other than the one it records (one
    ``stat`` per directory, not per file), or is gone: then a file was added, removed or
    renamed there. An edit in place moves no directory's mtime."""
    try:
        for prefix, value in fp.items():
            if os.stat(os.path.join(root, prefix)).st_mtime_ns != int(value.rsplit(":", 1)[1]):
                return True
    except (OSError, ValueError, IndexError):
        return True
    return False


@dataclass(frozen=True)
class FolderHint:
    """What is known unchanged in one content folder since the store's file stats were
    recorded: the folders whose entries are as they were, with their recorded sums, and
    every folder there is. Given by ``feedpub publish``'s quiet record (feedpub.quiet),
    which compared fingerprints, and by the daemon's watcher (file events since its last
    clean scan)."""

    unchanged: dict[str, str]  # folder -> recorded fingerprint value
    dirs: frozenset[str]
    # The store is as a clean collect (nothing rejected) left it and none ran since (the
    # quiet record; the daemon's own last collect): no live article is without its file,
    # so nothing unlisted is retracted, and every file of the listing has its stats row.
    no_orphans: bool = False
    # How many files the listing the hint stands on counted (the quiet record's, the
    # daemon's last clean scan's). With no_orphans it is the store's stats row count of
    # this source: that collect left a row for each of its files and none other.
    listed_files: int | None = None


@dataclass(frozen=True)
class Scope:
    """A hinted folder source whose stats the collect read only in part
    (feedpub.collect_scope): the folders it trusts, with their recorded sums, are not
    listed and their files' stats were not read; the rows of ``walked`` were."""

    trusted: dict[str, list[int]]  # folder -> recorded [files, size, mtime, dir mtime]
    walked: frozenset[str]  # the folders whose rows were read (and will be written)
    stats: dict[str, tuple[int, int]]  # those rows


def folder_of(key: str) -> str:
    """ "a/b/c.md" -> "a/b/"; "c.md" -> ""."""
    return key[: key.rfind("/") + 1]


def recorded_sums(hint: FolderHint) -> dict[str, list[int]]:
    """The hint's unchanged folders with their recorded sums [files, size, mtime, dir
    mtime]; a value that is not four numbers is left out (its folder is walked)."""
    out: dict[str, list[int]] = {}
    for folder, value in hint.unchanged.items():
        sums = [int(x) for x in value.split(":")]
        if len(sums) == 4:
            out[folder] = sums
    return out


def trusted_folders(
    hint: FolderHint, known: dict[str, tuple[int, int]]
) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """(folder -> recorded sums, for the unchanged folders whose recorded file count is
    the number of ``known`` files in them; folder -> its known files, for the others).
    One pass over ``known``; a folder whose count disagrees is walked, not trusted."""
    by_dir: dict[str, list[str]] = {}
    for key in known:
        by_dir.setdefault(folder_of(key), []).append(key)
    trusted = {
        folder: sums
        for folder, sums in recorded_sums(hint).items()
        if sums[0] == len(by_dir.get(folder, ()))
    }
    rest = {d: keys for d, keys in by_dir.items() if d not in trusted}
    return trusted, rest


def walk(
    root: Path,
    unreadable: list[tuple[str, str]],
    tally: Tally | None = None,
    *,
    trusted: dict[str, list[int]] | None = None,
    dirs: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, str, int, int]]:
    """(relative posix path, full path, size, mtime_ns) of every content file, in a
    stable order (each folder's entries by name). Size and mtime are -1 when the file
    cannot be stat-ed (a symlink loop: the parser names it). Folders that cannot be
    listed go to ``unreadable``. ``tally`` sums the walk (see :func:`fingerprint`).

    ``trusted``: folders (see :func:`trusted_folders`) that are not listed at all: their
    files are not yielded, their recorded sums go into ``tally``, and their subfolders
    are taken from ``dirs`` (a folder whose entries did not change has the same ones).

    Plain strings, not Path objects: a no-change re-collect of 10,000 files is mostly
    this loop, and pathlib objects cost more than the stat calls themselves."""
    t = tally if tally is not None else Tally()
    trusted = trusted or {}
    children: dict[str, list[str]] = {}
    if trusted:
        for d in dirs:
            if d:
                parent = d[: d.rstrip("/").rfind("/") + 1]
                children.setdefault(parent, []).append(d)
        for subs in children.values():
            subs.sort(key=_name)  # by name, as listings are
    top = os.fspath(root)
    stack = [(top, "")]
    while stack:
        folder, prefix = stack.pop()
        if prefix in trusted:
            t.dirs[prefix] = list(trusted[prefix])
            for sub in children.get(prefix, ()):
                stack.append((os.path.join(folder, sub[len(prefix) : -1]), sub))
            continue
        try:
            sums = [0, 0, 0, os.stat(folder).st_mtime_ns]  # before listing: see fingerprint()
            t.dirs[prefix] = sums
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            t.failed = True
            unreadable.append((prefix or ".", e.strerror or type(e).__name__))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(SKIP_PREFIXES):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{name}/"))
            elif name.lower().endswith(SUFFIXES):
                rel = prefix + name
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:  # a symlink loop (ELOOP) and the like: parse_file names it
                    t.failed = True
                    yield rel, entry.path, -1, -1
                    continue
                sums[0] += 1
                sums[1] += st.st_size
                sums[2] += st.st_mtime_ns
                yield rel, entry.path, st.st_size, st.st_mtime_ns


def _name(folder: str) -> str:
    """ "a/b/" -> "b"."""
    return folder[:-1].rpartition("/")[2]


# With several processes, the first levels are listed here until there are this many
# subtrees per process to share out (names in order, every n-th to each).
SUBTREES_PER_PROCESS = 4

_Listed = list[tuple[str, int, list[str]]]  # (folder, its mtime, its content files' paths)
_Sums = dict[str, list[int]]  # folder -> [files, sum of sizes, sum of mtimes, dir mtime]


def fingerprint(
    root: Path | str,
    processes: int = 1,
    *,
    expected: int = 0,
    min_share: int = 20_000,
    meanwhile: Callable[[], object] | None = None,
) -> Fingerprint | None:
    """The fingerprint :func:`walk` would sum for ``root``, without building a path per
    file; None when something could not be read or ``root`` is not a folder.

    The no-change check of a 100,000-file folder is this function: one ``scandir`` per
    folder and one ``stat`` per file. With ``processes`` > 1 and ``expected`` files (the
    last fingerprint's count) at least ``min_share`` per process, the first levels are
    listed here and forked children each list and stat their share of the subtrees
    below, and stat their share of the files listed here (threads would not help: the
    loop holds the GIL between the calls). Fork only from a process running a single
    thread (the command line).

    ``meanwhile``: other work for this process (the publish's imports, when a change is
    already known): forked children, at least one, then walk the whole folder while
    this process runs it, so the two overlap on a machine with a core to spare."""
    n = max(1, min(processes, expected // max(1, min_share)))
    if meanwhile is not None:  # this process has work of its own: one core stays with it
        n = max(1, min(n, processes - 1))
    if n == 1 and meanwhile is None:  # one process: the whole tree as one subtree
        sums = _share([], 0, 1, [(os.fspath(root), "")])
    else:
        listed: _Listed = []
        frontier = [(os.fspath(root), "")]
        try:
            while frontier and len(frontier) < SUBTREES_PER_PROCESS * n:
                deeper: list[tuple[str, str]] = []
                for folder, prefix in frontier:
                    deeper.extend(_list(folder, prefix, listed))
                frontier = sorted(deeper, key=lambda d: d[1])
        except OSError:
            return None
        sums = _forked(listed, frontier, n, meanwhile)
    return None if sums is None else {p: ":".join(map(str, v)) for p, v in sums.items()}


def _list(folder: str, prefix: str, listed: _Listed) -> list[tuple[str, str]]:
    """List one folder into ``listed``; returns its subfolders (path, prefix)."""
    dir_mtime = os.stat(folder).st_mtime_ns  # before listing: see the module docstring
    files: list[str] = []
    subs: list[tuple[str, str]] = []
    with os.scandir(folder) as it:
        for entry in it:
            name = entry.name
            if name.startswith(SKIP_PREFIXES):
                continue
            if entry.is_dir(follow_symlinks=False):
                subs.append((entry.path, f"{prefix}{name}/"))
            elif name.lower().endswith(SUFFIXES) and entry.is_file():
                files.append(entry.path)
    listed.append((prefix, dir_mtime, files))
    return subs


def _share(listed: _Listed, part: int, parts: int, subtrees: list[tuple[str, str]]) -> _Sums | None:
    """The sums of one process: every ``parts``-th file of the folders in ``listed``
    from ``part``, and every file of ``subtrees`` (listed here)."""
    out: _Sums = {}
    try:
        _sum_listed(listed, part, parts, out)
        for folder, prefix in subtrees:
            _sum_tree(folder, prefix, out)
    except OSError:
        return None
    return out


def _sum_listed(listed: _Listed, part: int, parts: int, out: _Sums) -> None:
    """Every ``parts``-th file (from ``part``) of each listed folder, stat-ed by its path."""
    stat = os.stat
    for prefix, dir_mtime, files in listed:
        mine = files[part::parts] if parts > 1 else files
        size = mtime = 0
        for path in mine:
            st = stat(path)
            size += st.st_size
            mtime += st.st_mtime_ns
        out[prefix] = [len(mine), size, mtime, dir_mtime]


def _sum_tree(folder: str, prefix: str, out: _Sums) -> None:
    """Every directory below ``folder`` (itself included) into ``out``, as :func:`_list`
    and the ``stat`` of each file would sum it (OSError when something cannot be read).
    The entries are told apart as :func:`_list` and :func:`walk` tell them."""
    if not _BY_FD:  # platforms without scandir(fd): list, then stat by path
        below: _Listed = []
        stack = [(folder, prefix)]
        while stack:
            path, pre = stack.pop()
            stack.extend(_list(path, pre, below))
        _sum_listed(below, 0, 1, out)
        return
    stack = [(folder, prefix)]
    while stack:
        path, pre = stack.pop()
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            dir_mtime = os.fstat(fd).st_mtime_ns  # before listing, as _list does
            count = size = mtime = 0
            with os.scandir(fd) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith(SKIP_PREFIXES):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((f"{path}/{name}", f"{pre}{name}/"))
                    elif name.lower().endswith(SUFFIXES) and entry.is_file():
                        st = entry.stat()  # fstatat(fd, name), following a symlink
                        count += 1
                        size += st.st_size
                        mtime += st.st_mtime_ns
        finally:
            os.close(fd)
        out[pre] = [count, size, mtime, dir_mtime]


def _forked(
    listed: _Listed,
    frontier: list[tuple[str, str]],
    n: int,
    meanwhile: Callable[[], object] | None = None,
) -> _Sums | None:
    """:func:`_share` in ``n`` processes (this one and n - 1 forked children), merged.
    With ``meanwhile``, n children take every share and this process runs it."""
    children: list[tuple[int, int]] = []
    for part in range(0 if meanwhile else 1, n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its share, as JSON down the pipe, then out at once
            code = 1
            try:
                os.close(r)
                data = json.dumps(_share(listed, part, n, frontier[part::n])).encode()
                with os.fdopen(w, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    shares: list[_Sums | None] = []
    try:
        if meanwhile is None:
            shares.append(_share(listed, 0, n, frontier[0::n]))
        else:
            meanwhile()
    finally:  # whatever happened here, every child is reaped
        for pid, r in children:
            with os.fdopen(r, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            shares.append(json.loads(data) if status == 0 and data else None)
    merged: _Sums = {}
    for share in shares:
        if share is None:
            return None
        for prefix, (count, size, mtime, dir_mtime) in share.items():
            into = merged.setdefault(prefix, [0, 0, 0, dir_mtime])
            into[0] += count
            into[1] += size
            into[2] += mtime
    return merged
