"""Walking a content folder: which files are content, and a fingerprint of the listing.

Light on purpose (os only): ``feedpub publish`` walks the folder before it imports the
parsers, the database layer or the configuration models (``feedpub.quiet``).

The fingerprint of a folder sums, over every content file, its size and mtime
(nanoseconds), and over every directory walked, its mtime, with the counts of both. A
file written in place changes its mtime; a file created, deleted or renamed changes the
mtime of the directory holding it (hidden and editor temp files too: that costs one
full collect, never a missed change). Two changes that cancel out exactly, to the
nanosecond, would go unseen; so would a file edited without changing its size within
one mtime tick, as the per-file comparison never saw it either (docs/performance.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")
SKIP_PREFIXES = (".", "_")  # hidden files, editor temp files, _drafts folders


@dataclass
class Tally:
    """Sums over a walk: see the module docstring."""

    files: int = 0
    size: int = 0
    mtime: int = 0
    dirs: int = 0
    dir_mtime: int = 0
    failed: bool = False  # a folder or file could not be listed or stat-ed

    def fingerprint(self) -> str | None:
        """The folder's fingerprint, or None when some of it could not be read."""
        if self.failed:
            return None
        return f"{self.files}:{self.size}:{self.mtime}:{self.dirs}:{self.dir_mtime}"


def walk(
    root: Path, unreadable: list[tuple[str, str]], tally: Tally | None = None
) -> Iterator[tuple[str, str, int, int]]:
    """(relative posix path, full path, size, mtime_ns) of every content file, in a
    stable order (each folder's entries by name). Size and mtime are -1 when the file
    cannot be stat-ed (a symlink loop: the parser names it). Folders that cannot be
    listed go to ``unreadable``. ``tally`` sums the walk (see :func:`fingerprint`).

    Plain strings, not Path objects: a no-change re-collect of 10,000 files is mostly
    this loop, and pathlib objects cost more than the stat calls themselves."""
    t = tally if tally is not None else Tally()
    top = os.fspath(root)
    stack = [(top, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            t.dir_mtime += os.stat(folder).st_mtime_ns  # before listing: see fingerprint()
            t.dirs += 1
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
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:  # a symlink loop (ELOOP) and the like: parse_file names it
                    t.failed = True
                    yield prefix + name, entry.path, -1, -1
                    continue
                t.files += 1
                t.size += st.st_size
                t.mtime += st.st_mtime_ns
                yield prefix + name, entry.path, st.st_size, st.st_mtime_ns


def fingerprint(root: Path | str) -> str | None:
    """The fingerprint :func:`walk` would sum for ``root``, without building a path per
    file (the no-change check of a 100,000-file folder is this loop and its stat calls).
    None when something could not be read or ``root`` is not a folder."""
    t = Tally()
    stack = [os.fspath(root)]
    try:
        while stack:
            folder = stack.pop()
            t.dir_mtime += os.stat(folder).st_mtime_ns
            t.dirs += 1
            with os.scandir(folder) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith(SKIP_PREFIXES):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif name.lower().endswith(SUFFIXES) and entry.is_file():
                        st = entry.stat()
                        t.files += 1
                        t.size += st.st_size
                        t.mtime += st.st_mtime_ns
    except OSError:
        return None
    return t.fingerprint()
