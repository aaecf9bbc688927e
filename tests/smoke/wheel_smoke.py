"""Wheel smoke test: feedpub as a user meets it after ``pip install feedpub``.

Builds the wheel from a copy of the project, installs it WITHOUT extras into a fresh
venv (with the pip that venv ships, as a user's would be), then, with nothing of the
dev venv or the source tree on the path:

1. imports every module of the package (``pkgutil.walk_packages``), naming any that fails;
2. runs ``feedpub publish`` on a small newsroom written here, with a ``folder`` source, a
   ``feed`` source (an excerpt-only Wix feed with ``full_text = true``) and a ``pages``
   source (a sitemap), both served by a real HTTP server on 127.0.0.1, and checks the exit
   status and that rss.xml, atom.xml and feed.json hold items from all three sources;
3. runs ``feedpub digest preview`` (templates shipped as package data, MJML).

Only pip talks to the network; everything else stays on loopback. Run from the project
root (``make smoke`` or ``.ci/wheel-smoke``)::

    python3.11 -m tests.smoke.wheel_smoke [--project DIR] [--keep]

``--project`` builds the wheel from another checkout (to show that the test fails on a
revision with a missing dependency); the fixtures always come from this tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from tests.upstream_http import DATA, UpstreamServer

ROOT = Path(__file__).resolve().parents[2]
HTML = "text/html; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
WIX_POSTS = {  # the Wix feed's entries -> the page served for each (full_text)
    "/wix/post/ukraine-s-security-and-peace-agreement": "page-wix.html",
    "/wix/post/sri-lanka-s-budget-2025-what-why": "page-wordpress.html",
    "/wix/post/cricket-lions-win-the-series": "page-undated.html",
}
SITE_POSTS = {  # sitemap.xml's article pages ({BASE}/post/...)
    "/site/post/ukraine-s-security-and-peace-agreement": "page-wix.html",
    "/site/post/port-strike-enters-its-third-day": "page-wordpress.html",
    "/site/post/about-the-harbour-ferries": "page-undated.html",
}
# Titles that only one source can have produced.
EXPECTED = {
    "folder": ["Smoke test: harbour lights festival", "Smoke test: night market returns"],
    "feed": ["Sri Lanka's Budget 2025: What & Why", "Cricket: Lions win the series"],
    "pages": ["Port strike enters its third day", "About the harbour ferries"],
}
# The budget entry's feed item is a two-line excerpt; its page (page-wordpress.html) is
# the full text, extracted with trafilatura.
FULL_TEXT = ("Sri Lanka's Budget 2025: What & Why", "union is asking")

STORY = """\
---
title: "{title}"
author: Smoke Desk
date: 2025-02-{day} 09:00
tags: [harbour]
---

{title}. The festival brings music and food stalls to the waterfront every evening.
"""

IMPORT_ALL = r"""
import importlib, json, pkgutil, sys, traceback
failed = {}
def why():  # the exception and the last frames: where the import chain broke
    exc = sys.exc_info()[1]
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    chain = " -> ".join(f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno}" for f in frames)
    return f"{type(exc).__name__}: {exc}\n(via {chain})"
names = ["feedpub"]
try:
    import feedpub
    def onerror(name):
        failed[name] = why()
    names += [m.name for m in pkgutil.walk_packages(feedpub.__path__, "feedpub.", onerror=onerror)]
    where = feedpub.__file__
except Exception:
    failed["feedpub"] = why()
    where = None
for name in names:
    if name in failed:
        continue
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = why()
print(json.dumps({"file": where, "modules": names, "failed": failed}))
"""


class SmokeFailure(Exception):
    pass


def log(msg: str) -> None:
    print(f"smoke: {msg}", flush=True)


def run(
    cmd: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def must(what: str, r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if r.returncode != 0:
        raise SmokeFailure(f"{what}: exit status {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def indent(text: str) -> str:
    return textwrap.indent(text.rstrip(), "    ")


def copy_project(project: Path, dest: Path) -> Path:
    """What a build reads, without the dev venv, caches, output or in-tree build leftovers
    (pip builds a local folder in place: building a copy keeps the checkout clean)."""
    top = {".git", ".venv", "venv", "build", "dist", "feeds", "outbox", "preview", "tests", "bench"}
    everywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".*_cache", "feedpub.db*")

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set(everywhere(folder, names))
        return skip | (top & set(names)) if Path(folder) == project else skip

    shutil.copytree(project, dest, ignore=ignore)
    return dest


def build_and_install(project: Path, tmp: Path) -> Path:
    """Fresh venv; wheel built with that venv's pip (isolated build); installed without
    extras. Returns the venv's bin folder."""
    t = time.monotonic()
    venv = tmp / "venv"
    must("python -m venv", run([sys.executable, "-m", "venv", venv], cwd=tmp))
    py = venv / "bin" / "python"
    pip = [py, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    pip_version = must("pip --version", run([*pip, "--version"], cwd=tmp)).stdout.split()[1]
    src = copy_project(project, tmp / "src")
    dist = tmp / "dist"
    must("pip wheel", run([*pip, "wheel", "--no-deps", "-q", "-w", dist, src], cwd=tmp))
    (wheel,) = dist.glob("feedpub-*.whl")
    log(f"built {wheel.name} ({time.monotonic() - t:.1f} s)")
    t = time.monotonic()
    must("pip install (no extras)", run([*pip, "install", "-q", wheel], cwd=tmp))
    log(
        f"installed it without extras in a fresh venv, pip {pip_version} ({time.monotonic() - t:.1f} s)"
    )
    return venv / "bin"


def check_imports(bin_dir: Path, tmp: Path) -> list[str]:
    # -I: no PYTHONPATH, no user site, no current folder: only what the wheel installed.
    r = run([bin_dir / "python", "-I", "-c", IMPORT_ALL], cwd=tmp, timeout=300)
    if r.returncode != 0 or not r.stdout.strip():
        return [f"import check crashed (exit {r.returncode}):\n{indent(r.stdout + r.stderr)}"]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    problems = [f"import {name} failed: {tb}" for name, tb in sorted(out["failed"].items())]
    where = out["file"]
    if where is not None and not Path(where).is_relative_to(bin_dir.parent):
        problems.append(f"feedpub was imported from {where}, not from the fresh venv")
    n_ok = len(out["modules"]) - len(out["failed"])
    log(f"imported {n_ok} of {len(out['modules'])} modules from the wheel")
    return problems


def serve_upstream(srv: UpstreamServer) -> None:
    base = srv.url("")
    feed = (
        (DATA / "wix-blog-feed.xml")
        .read_text()
        .replace("https://www.jadetimes.example", f"{base}/wix")
    )
    srv.route("/wix/blog-feed.xml", body=feed.encode(), content_type=RSS, etag='"smoke"')
    sitemap = (DATA / "sitemap.xml").read_text().replace("{BASE}", f"{base}/site")
    srv.route("/site/sitemap.xml", body=sitemap.encode(), etag='"smoke"')
    for path, page in {**WIX_POSTS, **SITE_POSTS}.items():
        srv.serve_file(path, page, content_type=HTML)


def write_newsroom(root: Path, srv: UpstreamServer) -> Path:
    content = root / "content"
    content.mkdir(parents=True)
    for day, title in zip(("18", "19"), EXPECTED["folder"], strict=True):
        (content / f"2025-02-{day}.md").write_text(STORY.format(title=title, day=day))
    config = root / "config.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [site]
            title = "Smoke Times"
            base_url = "https://smoke.example/"
            timezone = "Asia/Colombo"
            default_beat = "world"

            [store]
            url = "sqlite:///feedpub.db"

            [[sources]]
            type = "folder"
            path = "content"

            [[sources]]
            type = "feed"
            name = "wix"
            url = "{srv.url("/wix/blog-feed.xml")}"
            full_text = true

            [[sources]]
            type = "pages"
            name = "site"
            sitemap = "{srv.url("/site/sitemap.xml")}"
            url_pattern = "/post/"
            requests_per_second = 1000

            [[beats]]
            slug = "russia-ukraine-war"
            title = "Russia-Ukraine war"
            authors = ["Iruni Kalupahana"]

            [[beats]]
            slug = "world"
            title = "World"

            [[newsletters]]
            slug = "daily"
            title = "Smoke Daily"
            from = "Smoke Times <news@smoke.example>"
            schedule = "0 7 * * *"
            postal_address = "1 Loopback Road"

            [secrets]
            token_key_env = "FEEDPUB_SMOKE_SECRET"
            """
        )
    )
    return config


def feed_titles(feeds: Path) -> dict[str, set[str]]:
    rss = ET.parse(feeds / "rss.xml").getroot()
    atom = ET.parse(feeds / "atom.xml").getroot()
    jf = json.loads((feeds / "feed.json").read_text(encoding="utf-8"))
    return {
        "rss.xml": {t.text or "" for t in rss.iterfind("channel/item/title")},
        "atom.xml": {t.text or "" for t in atom.iterfind(f"{ATOM_NS}entry/{ATOM_NS}title")},
        "feed.json": {item.get("title", "") for item in jf["items"]},
    }


def check_publish(bin_dir: Path, tmp: Path) -> list[str]:
    root = tmp / "newsroom"
    srv = UpstreamServer().start()
    try:
        serve_upstream(srv)
        config = write_newsroom(root, srv)
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "FEEDPUB_SMOKE_SECRET": "smoke-test-key",
        }
        t = time.monotonic()
        r = run(
            [bin_dir / "feedpub", "--config", config, "publish"], cwd=root, env=env, timeout=300
        )
        log(f"feedpub publish: exit {r.returncode} ({time.monotonic() - t:.1f} s)")
        print(indent(r.stdout + r.stderr), flush=True)
        if r.returncode != 0:
            return [f"feedpub publish exited with status {r.returncode} (want 0)"]
        problems: list[str] = []
        fetched = {h.path for h in srv.hits}
        problems += [f"full_text: {p} was never fetched" for p in WIX_POSTS if p not in fetched]
        pv = run(
            [bin_dir / "feedpub", "--config", config, "digest", "preview", "daily"],
            cwd=root,
            env=env,
        )
        if pv.returncode != 0 or not (root / "preview" / "daily" / "digest.html").is_file():
            problems.append(
                f"feedpub digest preview failed (exit {pv.returncode}):\n{indent(pv.stdout + pv.stderr)}"
            )
    finally:
        srv.stop()
    feeds = root / "feeds"
    missing = [n for n in ("rss.xml", "atom.xml", "feed.json") if not (feeds / n).is_file()]
    if missing:
        return [*problems, f"feeds/{', '.join(missing)} not written"]
    for name, titles in feed_titles(feeds).items():
        for source, want in EXPECTED.items():
            lost = [t for t in want if t not in titles]
            if lost:
                problems.append(f"feeds/{name}: no item from the {source} source ({lost})")
    jf = json.loads((feeds / "feed.json").read_text(encoding="utf-8"))
    title, text = FULL_TEXT
    bodies = [i.get("content_html", "") for i in jf["items"] if i.get("title") == title]
    if not any(text in b for b in bodies):
        problems.append(f"full_text: {title!r} does not carry its page's text ({text!r})")
    if not problems:
        counts = {s: len(v) for s, v in EXPECTED.items()}
        log(f"feeds/rss.xml, atom.xml, feed.json hold the items of all three sources {counts}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--project", type=Path, default=ROOT, help="checkout to build (default: this one)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="feedpub-smoke-"))
    problems: list[str] = []
    try:
        bin_dir = build_and_install(args.project.resolve(), tmp)
        problems += check_imports(bin_dir, tmp)
        problems += check_publish(bin_dir, tmp)
    except SmokeFailure as e:
        problems.append(str(e))
    except subprocess.TimeoutExpired as e:
        problems.append(f"timed out: {e}")
    elapsed = time.monotonic() - started
    if problems:
        for p in problems:
            log(f"FAIL {p}")
        log(f"FAILED ({elapsed:.0f} s); kept {tmp}")
        return 1
    if args.keep:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"OK ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
