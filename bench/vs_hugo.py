"""feedpub against Hugo, whole process, on the same generated Markdown newsroom.

    .venv/bin/python bench/vs_hugo.py [--sizes 1000,10000] [--big] [--runs 3] [--work DIR]
                                      [--postgres [ADMIN_URL]] [--skip-cold] [--drop-caches]

The newsroom (400-900-word articles, 20 beats, 50 authors, RSS feeds of 50 items) is
generated once per size; Hugo reads the very same files (its ``contentDir`` points at
feedpub's content folder) and renders RSS only, with full content, for the home page,
every beat and every author (no HTML pages). ``hugo`` must be on PATH (Debian: ``apt-get
install hugo``); without it the Hugo columns say "-" and a note says why.

Each scenario is a fresh child process; the figures are the median wall time of
``--runs`` runs (default 3) and the largest peak RSS of the child (``ru_maxrss`` as GNU
time reports it, ``apt-get install time``: the largest of the child and of the worker
processes it started, not their sum; see ``run``). Scenarios:

- cold publish: empty store and output folder, ``feedpub publish`` / ``hugo``
- nothing changed: ``feedpub publish`` again / Hugo's full rebuild
- one new article: one more file, then ``feedpub publish`` / ``hugo``
- cold publish with ``[output] archives = false`` (a store and folder of its own): each
  feed its newest 50 items, no RFC 5005 archive pages, as Hugo's RSS is
- ``feedpub --help`` / ``hugo version``, ``feedpub status``
- with ``--drop-caches`` (root, Linux): nothing changed and one new article again, each
  tool's run preceded by ``sync; echo 1 > /proc/sys/vm/drop_caches`` (the page cache
  emptied, as a VM's proactive reclaim or a busy host leaves it: the store's pages and
  the content files are read from disk; directory entries and inodes stay cached)
- with ``--postgres``: the cold, nothing-changed and one-new scenarios again on a
  PostgreSQL store (a database created afresh for each cold run and dropped after)

``--big`` adds 100,000 (about 400 MB of text; a cold feedpub run took minutes).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _corpus import WORDS  # bench/ is on sys.path when a script runs

FEEDPUB = [sys.executable, "-m", "feedpub"]
BEATS = 20
AUTHORS = 50
ITEMS = 50
START = datetime(2024, 1, 1, tzinfo=UTC)


def article(i: int, rng: random.Random) -> str:
    """One Markdown article of 400-900 words with YAML front matter."""
    title = " ".join(rng.choice(WORDS) for _ in range(6)).capitalize() + f" {i}"
    date = START + timedelta(minutes=7 * i)
    words = rng.randint(400, 900)
    paras: list[str] = []
    while words > 0:
        n = min(words, rng.randint(40, 120))
        words -= n
        text = " ".join(rng.choice(WORDS) for _ in range(n))
        if rng.random() < 0.3:
            text = text.replace(" the ", " *the* ", 1).replace(" port ", " [port](/post/p/) ", 1)
        paras.append(text.capitalize() + ".")
    if len(paras) > 3:
        paras.insert(2, "## " + " ".join(rng.choice(WORDS) for _ in range(4)).capitalize())
    front = (
        f'---\ntitle: "{title}"\nauthor: "Author {i % AUTHORS}"\n'
        f"date: {date:%Y-%m-%dT%H:%M:%SZ}\ntags: [t{i % BEATS}]\n"
        f'beat: beat-{i % BEATS}\nsummary: "{title}."\n---\n'
    )
    return front + "\n\n".join(paras) + "\n"


FEEDPUB_CONFIG = """\
[site]
title = "Bench newsroom"
base_url = "https://bench.example/"
language = "en"
timezone = "UTC"
article_path = "post/{{slug}}/"
default_beat = "beat-0"

[store]
url = "sqlite:///feedpub.db"

[output]
dir = "feeds"
items_per_feed = {items}

[[sources]]
type = "folder"
path = "content"
{beats}
"""

HUGO_CONFIG = """\
baseURL = "https://bench.example/"
title = "Bench newsroom"
contentDir = "{content}"
publishDir = "public"
disableKinds = ["sitemap", "robotsTXT", "404", "section"]
enableRobotsTXT = false
timeZone = "UTC"
[services.rss]
limit = {items}
[taxonomies]
beat = "beat"
author = "author"
[outputs]
home = ["RSS"]
taxonomy = ["RSS"]
term = ["RSS"]
[[cascade]]
[cascade._target]
kind = "page"
[cascade._build]
render = "never"
list = "always"
"""

# Full content in every item, as feedpub's feeds carry it.
HUGO_RSS = """{{ printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\"?>" | safeHTML }}
{{- $pages := .RegularPages }}{{ if .IsHome }}{{ $pages = .Site.RegularPages }}{{ end }}
<rss version="2.0"><channel><title>{{ .Title }}</title><link>{{ .Permalink }}</link>
{{- range first 50 $pages.ByDate.Reverse }}
<item><title>{{ .Title }}</title><link>{{ $.Site.BaseURL }}post/{{ .File.ContentBaseName }}/</link>
<guid>{{ $.Site.BaseURL }}post/{{ .File.ContentBaseName }}/</guid>
<pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" }}</pubDate>
<description>{{ .Content | html }}</description></item>
{{- end }}
</channel></rss>
"""


def make_newsroom(root: Path, n: int) -> None:
    rng = random.Random(n)
    content = root / "content"
    for i in range(n):
        sub = content / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"a{i}.md").write_text(article(i, rng), encoding="utf-8")
    beats = "".join(
        f'\n[[beats]]\nslug = "beat-{b}"\ntitle = "Beat {b}"\ntags = ["t{b}"]\n'
        for b in range(BEATS)
    )
    (root / "config.toml").write_text(
        FEEDPUB_CONFIG.format(items=ITEMS, beats=beats), encoding="utf-8"
    )
    hugo = root / "hugo"
    (hugo / "layouts" / "_default").mkdir(parents=True)
    (hugo / "config.toml").write_text(
        HUGO_CONFIG.format(content=content, items=ITEMS), encoding="utf-8"
    )
    (hugo / "layouts" / "_default" / "rss.xml").write_text(HUGO_RSS, encoding="utf-8")


@dataclass
class Row:
    scenario: str
    n: int | None
    feedpub: list[tuple[float, int]] = field(default_factory=list)
    hugo: list[tuple[float, int]] = field(default_factory=list)
    note: str = ""


GNU_TIME = "/usr/bin/time"  # Debian's `time` package


def run(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process.

    Linux carries the peak RSS of a process's image before ``exec`` into the new program's
    (``ru_maxrss``): a child spawned by this process, which holds the newsroom's figures,
    would report at least this process's own peak. So the child is started through GNU
    time (a small program: its peak is what it reports for the command); without it, from
    here, and small children then report this process's size."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        timed = os.path.exists(GNU_TIME)
        full = [GNU_TIME, "-q", "-f", "%M", "-o", rss.name, *cmd] if timed else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            full, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env()
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
        peak_kb = int(rss.read().split()[-1]) if timed else usage.ru_maxrss
    return wall, peak_kb * 1024


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FEEDPUB_CONFIG", None)
    return env


def compile_feedpub() -> str:
    """Byte-compile feedpub's own modules, as pip does when it installs the wheel.

    An editable install (``make``'s ``pip install -e``) leaves them as source, and with
    ``PYTHONDONTWRITEBYTECODE`` set (as on the development machines) every child process
    would compile the ~60 modules a publish imports again: 60-90 ms that no installed
    feedpub pays."""
    spec = importlib.util.find_spec("feedpub")
    assert spec is not None and spec.submodule_search_locations
    folder = spec.submodule_search_locations[0]
    compileall.compile_dir(folder, quiet=1)
    return folder


def fp(root: Path, *args: str) -> list[str]:
    return [*FEEDPUB, "--config", str(root / "config.toml"), *args]


def hugo_cmd(root: Path) -> list[str]:
    return ["hugo", "--quiet", "-s", str(root / "hugo")]


def clean_feedpub(root: Path, db: str = "feedpub.db", out: str = "feeds") -> None:
    for name in (db, f"{db}-wal", f"{db}-shm"):
        (root / name).unlink(missing_ok=True)
    shutil.rmtree(root / out, ignore_errors=True)


LEAN = ("feedpub-lean.db", "feeds-lean")


def lean_config(root: Path) -> Path:
    """The newsroom's configuration with archives off, its own store and output folder."""
    text = (root / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///feedpub.db"', f'url = "sqlite:///{LEAN[0]}"')
    text = text.replace('dir = "feeds"\n', f'dir = "{LEAN[1]}"\narchives = false\n')
    assert "archives = false" in text and LEAN[0] in text
    path = root / "config-lean.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Postgres:
    """Fresh PostgreSQL databases for the PostgreSQL rows (``--postgres ADMIN_URL``)."""

    def __init__(self, admin_url: str) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def fresh(self, name: str) -> str:
        """Drop and create database ``name``; its URL."""
        with self.engine.connect() as conn:
            conn.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(self.sa.text(f'CREATE DATABASE "{name}"'))
        return self.engine.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pg_config(root: Path, url: str) -> Path:
    """The newsroom's configuration on a PostgreSQL store, with its own output folder."""
    text = (root / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///feedpub.db"', f'url = "{url}"')
    text = text.replace('dir = "feeds"\n', 'dir = "feeds-pg"\n')
    assert url in text and "feeds-pg" in text
    path = root / "config-pg.toml"
    path.write_text(text, encoding="utf-8")
    return path


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> None:
    """Empty the kernel's page cache (clean pages only: ``sync`` first)."""
    os.sync()
    DROP_CACHES.write_text("1\n")


def can_drop_page_cache() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def settle() -> None:
    """Write the cold runs' gigabytes of feed files out to disk before the next scenario
    is timed (the kernel's writeback would slow it down otherwise)."""
    os.sync()
    time.sleep(2)


def measure_postgres(
    n: int, runs: int, root: Path, pg: Postgres, hugo: dict[str, Row], log: Callable[[str], None]
) -> list[Row]:
    """The cold, nothing-changed and one-new scenarios on a PostgreSQL store (Hugo's
    columns: the same Hugo runs as the SQLite rows)."""
    db = f"vs_hugo_{n}"
    rows = {k: Row(f"{k} (PostgreSQL)", n) for k in hugo}
    for k, row in rows.items():
        row.hugo = hugo[k].hugo
    extra = root / "content" / "zz-new-pg"
    shutil.rmtree(extra, ignore_errors=True)
    config = root / "config-pg.toml"
    for r in range(runs):
        config = pg_config(root, pg.fresh(db))
        shutil.rmtree(root / "feeds-pg", ignore_errors=True)
        rows["cold publish"].feedpub.append(
            run([*FEEDPUB, "--config", str(config), "publish"], root)
        )
        log(
            f"  {n:,} run {r + 1}: feedpub cold, PostgreSQL {rows['cold publish'].feedpub[-1][0]:.2f} s"
        )
    settle()
    for _ in range(runs):
        rows["publish, nothing changed"].feedpub.append(
            run([*FEEDPUB, "--config", str(config), "publish"], root)
        )
    extra.mkdir()
    rng = random.Random(11)
    for r in range(runs):
        (extra / f"new{r}.md").write_text(article(n + 3000 + r, rng), encoding="utf-8")
        rows["publish, one new article"].feedpub.append(
            run([*FEEDPUB, "--config", str(config), "publish"], root)
        )
    shutil.rmtree(extra)
    shutil.rmtree(root / "feeds-pg", ignore_errors=True)
    pg.drop(db)
    return list(rows.values())


def clean_hugo(root: Path) -> None:
    for name in ("public", "resources", ".hugo_build.lock"):
        p = root / "hugo" / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def measure(
    n: int,
    runs: int,
    work: Path,
    has_hugo: bool,
    log: Callable[[str], None],
    cold: bool = True,
    pg: Postgres | None = None,
    drop: bool = False,
) -> list[Row]:
    root = work / f"newsroom-{n}"
    if not (root / "config.toml").exists():
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        make_newsroom(root, n)
        log(f"generated {n:,} articles in {time.perf_counter() - t0:.1f} s ({root})")
    extra = root / "content" / "zz-new"
    shutil.rmtree(extra, ignore_errors=True)
    kinds = (
        "cold publish",
        "cold publish, archives off",
        "publish, nothing changed",
        "publish, one new article",
    )
    rows = {k: Row(k, n) for k in kinds[0 if cold else 2 :]}
    if not cold:
        run(fp(root, "publish"), root)  # the store of an earlier run, brought up to date
    rng = random.Random(7)
    for r in range(runs if cold else 0):
        clean_feedpub(root)
        rows["cold publish"].feedpub.append(run(fp(root, "publish"), root))
        log(f"  {n:,} run {r + 1}: feedpub cold {rows['cold publish'].feedpub[-1][0]:.2f} s")
        if has_hugo:
            clean_hugo(root)
            rows["cold publish"].hugo.append(run(hugo_cmd(root), root))
            log(f"  {n:,} run {r + 1}: hugo cold {rows['cold publish'].hugo[-1][0]:.2f} s")
    if cold:  # what each wrote: feedpub's feeds carry every article (RFC 5005 archives)
        note = "output: feedpub " + _output(root / "feeds")
        if has_hugo:
            note += ", Hugo " + _output(root / "hugo" / "public")
        rows["cold publish"].note = note
        lean = lean_config(root)
        row = rows["cold publish, archives off"]
        row.hugo = rows["cold publish"].hugo  # the same Hugo runs: its output is this one
        for r in range(runs):
            clean_feedpub(root, *LEAN)
            row.feedpub.append(run([*FEEDPUB, "--config", str(lean), "publish"], root))
            log(f"  {n:,} run {r + 1}: feedpub cold, archives off {row.feedpub[-1][0]:.2f} s")
        row.note = "output: feedpub " + _output(root / LEAN[1])
        clean_feedpub(root, *LEAN)
    settle()
    for _ in range(runs):
        rows["publish, nothing changed"].feedpub.append(run(fp(root, "publish"), root))
        if has_hugo:
            rows["publish, nothing changed"].hugo.append(run(hugo_cmd(root), root))
    if has_hugo:
        rows["publish, nothing changed"].note = "Hugo: full rebuild"
    extra.mkdir()
    for r in range(runs):  # one more file; each tool's next run is the first to see it
        (extra / f"new{r}.md").write_text(article(n + 1000 + r, rng), encoding="utf-8")
        rows["publish, one new article"].feedpub.append(run(fp(root, "publish"), root))
        if has_hugo:
            rows["publish, one new article"].hugo.append(run(hugo_cmd(root), root))
    if drop:
        for label in ("publish, nothing changed", "publish, one new article"):
            row = Row(f"{label}, page cache dropped", n)
            rows[row.scenario] = row
            for r in range(runs):
                if "new" in label:
                    (extra / f"cold{r}.md").write_text(article(n + 2000 + r, rng), encoding="utf-8")
                drop_page_cache()
                row.feedpub.append(run(fp(root, "publish"), root))
                if has_hugo:
                    drop_page_cache()
                    row.hugo.append(run(hugo_cmd(root), root))
            log(f"  {n:,}: {row.scenario}: feedpub {fmt_time(row.feedpub)}")
    shutil.rmtree(extra)
    run(fp(root, "publish"), root)  # back to the generated newsroom
    if pg is not None and cold:
        kinds = ("cold publish", "publish, nothing changed", "publish, one new article")
        return [
            *rows.values(),
            *measure_postgres(n, runs, root, pg, {k: rows[k] for k in kinds}, log),
        ]
    return list(rows.values())


def _output(folder: Path) -> str:
    """Files and bytes under ``folder``."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return f"{files:,} files, {size / 2**20:,.0f} MB"


def startup(runs: int, work: Path, has_hugo: bool, sizes: list[int]) -> list[Row]:
    n = max(sizes)  # status on the largest store measured
    root = work / f"newsroom-{n}"
    help_row = Row("feedpub --help", None, note="Hugo: hugo version")
    status_row = Row("feedpub status", n)
    for _ in range(max(runs, 5)):
        help_row.feedpub.append(run([*FEEDPUB, "--help"], root))
        status_row.feedpub.append(run(fp(root, "status"), root))
        if has_hugo:
            help_row.hugo.append(run(["hugo", "version"], root))
    return [help_row, status_row]


def fmt_time(xs: list[tuple[float, int]]) -> str:
    if not xs:
        return "-"
    t = statistics.median(x[0] for x in xs)
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def fmt_mem(xs: list[tuple[float, int]]) -> str:
    return f"{max(x[1] for x in xs) / 2**20:,.0f} MB" if xs else "-"


def ratio(row: Row) -> str:
    if not row.feedpub or not row.hugo:
        return ""
    f = statistics.median(x[0] for x in row.feedpub)
    h = statistics.median(x[0] for x in row.hugo)
    return f"{f / h:.2f}× Hugo's time" if f >= h else f"{h / f:.2f}× faster"


def table(rows: list[Row]) -> str:
    out = [
        "| scenario | N | feedpub wall | Hugo wall | ratio | feedpub peak RSS | Hugo peak RSS | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mem_ratio = ""
        if r.feedpub and r.hugo and r.scenario == "cold publish":
            fm = max(x[1] for x in r.feedpub)
            hm = max(x[1] for x in r.hugo)
            mem_ratio = f" ({fm / hm:.2f} of Hugo's)"
        out.append(
            f"| {r.scenario} | {f'{r.n:,}' if r.n else '–'} | {fmt_time(r.feedpub)} | "
            f"{fmt_time(r.hugo)} | {ratio(r)} | {fmt_mem(r.feedpub)}{mem_ratio} | "
            f"{fmt_mem(r.hugo)} | {r.note} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--big", action="store_true", help="add 100,000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, help="keep generated newsrooms here (reused)")
    ap.add_argument(
        "--skip-cold",
        action="store_true",
        help="reuse the stores of an earlier run (--work): only the incremental scenarios",
    )
    ap.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        nargs="?",
        const="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="add the scenarios on a PostgreSQL store (a fresh database per cold run, "
        "created through ADMIN_URL; default: the local server)",
    )
    ap.add_argument(
        "--drop-caches",
        action="store_true",
        help="add nothing-changed and one-new runs after emptying the page cache (root)",
    )
    args = ap.parse_args()
    if args.drop_caches and not can_drop_page_cache():
        ap.error(f"--drop-caches: cannot write {DROP_CACHES} (run as root, on Linux)")
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if args.big and 100_000 not in sizes:
        sizes.append(100_000)
    has_hugo = shutil.which("hugo") is not None
    hugo_version = (
        subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.strip()
        if has_hugo
        else "hugo not on PATH: Hugo columns skipped (apt-get install hugo)"
    )

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(f"byte-compiled {compile_feedpub()} (as an installed wheel is)")
    pg = Postgres(args.postgres) if args.postgres else None
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="vs_hugo-")
        work = Path(tmp.name)
    else:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)
    try:
        rows: list[Row] = []
        for n in sizes:
            rows += measure(
                n, args.runs, work, has_hugo, log, not args.skip_cold, pg, args.drop_caches
            )
        rows += startup(args.runs, work, has_hugo, sizes)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"# {hugo_version}; {os.cpu_count()} CPUs; medians of {args.runs} runs")
    print(table(rows))


if __name__ == "__main__":
    main()
