"""Each hostile input of issue 11, timed with its peak memory: this checkout ("now")
against another feedpub source tree ("before", e.g. main before the fix).

    git archive <old-commit> src | tar -x -C /tmp/feedpub-before
    .venv/bin/python bench/hostile.py --before /tmp/feedpub-before/src

Every case runs in a fresh subprocess (peak RSS from wait4), under a time limit and an
address-space cap, so the old quadratic or exploding code cannot take the machine down:
a case that hits them shows "timeout" or "MemoryError".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

PRELUDE = r"""
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from feedpub.config import FolderSourceConfig, parse_config
from feedpub.sources.base import SourceContext
from feedpub.errors import FeedpubError

def ctx(tmp):
    cfg = parse_config({"site": {"title": "T", "base_url": "https://news.example/",
                                 "timezone": "Asia/Colombo"}}, root=Path(tmp))
    return SourceContext(cfg, datetime(2026, 11, 26, tzinfo=UTC))

def one_file(tmp, name, data):
    from feedpub.sources.folder import parse_file
    p = Path(tmp) / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    try:
        parse_file(p, name, ctx(tmp), FolderSourceConfig(type="folder", path=Path(".")), "f")
        return "published"
    except FeedpubError as e:
        return "rejected: " + str(e)[:70]

def folder(tmp, files):
    import os
    from feedpub.sources.folder import FolderSource
    for name, text in files.items():
        (Path(tmp) / name).write_text(text, encoding="utf-8")
    os.symlink("b", Path(tmp) / "a.md"); os.symlink("c", Path(tmp) / "b")
    os.symlink("b", Path(tmp) / "c")
    c = ctx(tmp)
    src = FolderSource(FolderSourceConfig(type="folder", path=Path(".")), "f")
    r = src.fetch(c)
    try:
        from feedpub.sources.boundary import screen_result
        screen_result(r, c.config.site.base_url)
    except ImportError:
        pass
    for a in r.articles:  # what collect does next with each article
        a.fingerprint_fields()
    return f"{len(r.articles)} published, {len(r.rejected)} rejected"
"""

BOMB = "---\ntitle: Bomb\na: &a [" + ", ".join(["lol"] * 9) + "]\n"
for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
    BOMB += f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]\n"
BOMB += "date: *i\n---\nbody\n"

HOSTILE_FILES = {
    "overflow.md": "---\ntitle: O\ndate: 9999-12-31 23:59:59-12:00\n---\nb\n",
    "year1.md": "---\ntitle: Y\ndate: 0001-01-01 00:00\n---\nb\n",
    "offset.md": '---\ntitle: Z\ndate: "2026-11-20 09:30 +99:00"\n---\nb\n',
    "feb30.md": "---\ntitle: F\ndate: 2026-11-20\nx: 2026-02-30\n---\nb\n",
    "ipv6.md": "---\ntitle: I\ndate: 2026-11-20\nurl: 'https://[oops/x'\n---\nb\n",
    "ctl.md": '---\ntitle: C\ndate: 2026-11-20\nid: "urn:x\\x01y"\n---\nb\n',
    "good.md": "---\ntitle: Good\ndate: 2026-11-20\n---\nb\n",
}

CASES: dict[str, str] = {
    "alias bomb (9 levels) in date:": f"out = one_file(tmp, 'bomb.md', {BOMB!r})",
    'title "<a " * 20000 (60 KB)': "from feedpub.text import plain_line\n"
    "out = str(len(plain_line('<a ' * 20000)))",
    'title "<a " * 60000 (180 KB)': "from feedpub.text import plain_line\n"
    "out = str(len(plain_line('<a ' * 60000)))",
    "title '<!--' * 40000": "from feedpub.text import plain_line\n"
    "out = str(len(plain_line('<!--' * 40000)))",
    "40,000 nested <div>": "from feedpub.text import sanitize_html\n"
    "out = str(len(sanitize_html('<div>' * 40000 + 'x' + '</div>' * 40000, 'https://a/')))",
    "100,000 nested <div>": "from feedpub.text import sanitize_html\n"
    "out = str(len(sanitize_html('<div>' * 100000 + 'x' + '</div>' * 100000, 'https://a/')))",
    'Markdown body "![" * 200000': "from feedpub.sources import markdown\n"
    "out = str(len(markdown.render('![' * 200000)))",
    "10 MB Markdown file": "out = one_file(tmp, 'big.md', '---\\ntitle: Big\\ndate: 2026-11-20\\n---\\n'"
    " + ('word ' * 12 + '\\n\\n') * 170000)",
    "1.9 MB Markdown file (under limit)": "out = one_file(tmp, 'big.md', "
    "'---\\ntitle: Big\\ndate: 2026-11-20\\n---\\n' + ('word ' * 12 + '\\n\\n') * 31000)",
    "folder of the issue's bad files": f"out = folder(tmp, {HOSTILE_FILES!r})",
}

CHILD = (
    PRELUDE
    + r"""
import tempfile
with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    try:
@BODY@
    except BaseException as e:
        out = "crashed: " + type(e).__name__ + ": " + str(e)[:60]
    print(json.dumps({"seconds": time.perf_counter() - t, "outcome": out}))
"""
)


def run_case(src: Path, body: str, *, timeout: float, mem_gb: float) -> tuple[str, str, str]:
    code = CHILD.replace("@BODY@", "\n".join("        " + ln for ln in body.splitlines()))
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    cap = int(mem_gb * 2**30)

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.DEVNULL,
            preexec_fn=limits,
        )  # fmt: skip
        started = time.monotonic()
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                os.kill(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return f">{timeout:.0f} s", f"{usage.ru_maxrss / 1024:.0f} MB", "timeout"
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace").strip().splitlines()
    rss = f"{usage.ru_maxrss / 1024:.0f} MB"
    if not text:
        return "-", rss, f"died (exit {proc.returncode})"
    res = json.loads(text[-1])
    return f"{res['seconds']:.3f} s", rss, res["outcome"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="src folder of the feedpub to compare with")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    ap.add_argument("--mem-gb", type=float, default=2.0, help="address-space cap per case")
    ap.add_argument("--only", help="run the cases whose name contains this")
    args = ap.parse_args()
    trees = [("now", HERE / "src")] + ([("before", args.before)] if args.before else [])
    print(f"{'case':34} {'tree':7} {'time':>9} {'peak RSS':>9}  outcome")
    for name, body in CASES.items():
        if args.only and args.only not in name:
            continue
        for label, src in trees:
            t, rss, outcome = run_case(src, body, timeout=args.timeout, mem_gb=args.mem_gb)
            print(f"{name:34} {label:7} {t:>9} {rss:>9}  {outcome[:90]}", flush=True)


if __name__ == "__main__":
    main()
