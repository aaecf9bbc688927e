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

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")
SKIP_PREFIXES = (".", "_")  # hidden files, editor temp files, _drafts folders


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


def walk(
    root: Path,
    unreadable: list[tuple[str, str]],
    tally: Tally | None = None,
    *,
    known: dict[str, tuple[int, int]] | None = None,
    unchanged: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, str, int, int]]:
    """(relative posix path, full path, size, mtime_ns) of every content file, in a
    stable order (each folder's entries by name). Size and mtime are -1 when the file
    cannot be stat-ed (a symlink loop: the parser names it). Folders that cannot be
    listed go to ``unreadable``. ``tally`` sums the walk (see :func:`fingerprint`).

    ``unchanged``: folders whose fingerprint is the one recorded when ``known`` (the
    files' recorded stats) was recorded: their files are not stat-ed again, ``known``
    says what their stat holds.

    Plain strings, not Path objects: a no-change re-collect of 10,000 files is mostly
    this loop, and pathlib objects cost more than the stat calls themselves."""
    t = tally if tally is not None else Tally()
    known = known if known is not None else {}
    top = os.fspath(root)
    stack = [(top, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            sums = [0, 0, 0, os.stat(folder).st_mtime_ns]  # before listing: see fingerprint()
            t.dirs[prefix] = sums
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            t.failed = True
            unreadable.append((prefix or ".", e.strerror or type(e).__name__))
            continue
        same = prefix in unchanged
        for entry in entries:
            name = entry.name
            if name.startswith(SKIP_PREFIXES):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{name}/"))
            elif name.lower().endswith(SUFFIXES):
                rel = prefix + name
                stat = known.get(rel) if same else None
                if stat is None:
                    try:
                        if not entry.is_file():
                            continue
                        st = entry.stat()
                    except OSError:  # a symlink loop (ELOOP) and the like: parse_file names it
                        t.failed = True
                        yield rel, entry.path, -1, -1
                        continue
                    stat = (st.st_size, st.st_mtime_ns)
                sums[0] += 1
                sums[1] += stat[0]
                sums[2] += stat[1]
                yield rel, entry.path, stat[0], stat[1]


def fingerprint(root: Path | str) -> Fingerprint | None:
    """The fingerprint :func:`walk` would sum for ``root``, without building a path per
    file (the no-change check of a 100,000-file folder is this loop and its stat calls).
    None when something could not be read or ``root`` is not a folder."""
    dirs: dict[str, str] = {}
    stack = [(os.fspath(root), "")]
    try:
        while stack:
            folder, prefix = stack.pop()
            dir_mtime = os.stat(folder).st_mtime_ns
            files = size = mtime = 0
            with os.scandir(folder) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith(SKIP_PREFIXES):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, f"{prefix}{name}/"))
                    elif name.lower().endswith(SUFFIXES) and entry.is_file():
                        st = entry.stat()
                        files += 1
                        size += st.st_size
                        mtime += st.st_mtime_ns
            dirs[prefix] = f"{files}:{size}:{mtime}:{dir_mtime}"
    except OSError:
        return None
    return dirs
