"""Send throughput of several sending instances on one PostgreSQL store.

1, 2 and 3 ``feedpub digest send`` processes (each its own process, as several hosts
would run them) share one edition of N subscribers, through two aiosmtpd sinks on
127.0.0.1 (each its own process; instance i sends to sink i % 2), against a PostgreSQL
database of their own. Printed: messages/s from the first to the last message at the
sinks (the send itself: start-up and freezing are left out) and the wall time of the
processes, each as a ratio to one instance; then the same messages' worth of raw
``smtplib`` (k processes, ``pool_size`` connections each, pre-built messages of the
edition's average size, no ledger) in the same run, for the ceiling of the machine.

    .venv/bin/python bench/scale_send.py [--subscribers 3000] [--pool 4] \
        [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

On a shared 2-core machine the sinks, PostgreSQL and the senders compete for the same
cores: the ratios say how the work divides, not what more hosts would add.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _seed import seed_newsletter  # noqa: E402  (bench/ is on sys.path when a script runs)
from _sink import free_port, sink  # noqa: E402

from feedpub.store import Store  # noqa: E402

BEATS = ["world", "technology", "climate", "sri-lanka", "russia-ukraine-war"]


# ---- sinks ------------------------------------------------------------------------------------
class Sinks:
    def __init__(self, ctx: Any) -> None:
        self.ports = [free_port(), free_port()]
        self.stats = [ctx.Array("d", 4) for _ in self.ports]
        self.procs = []
        for port, st in zip(self.ports, self.stats, strict=True):
            ready = ctx.Event()
            p = ctx.Process(target=sink, args=(port, st, ready), daemon=True)
            p.start()
            if not ready.wait(20):
                raise SystemExit("a sink did not start")
            self.procs.append(p)

    def reset(self) -> None:
        for st in self.stats:
            with st.get_lock():
                for i in range(4):
                    st[i] = 0.0

    def totals(self) -> tuple[int, int, float]:
        """(messages, bytes, seconds from the first to the last message at any sink)."""
        n = sum(int(st[0]) for st in self.stats)
        size = sum(int(st[1]) for st in self.stats)
        used = [st for st in self.stats if st[0]]
        window = max(st[3] for st in used) - min(st[2] for st in used) if used else 0.0
        return n, size, window

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            p.join(5)


# ---- one newsroom on a fresh PostgreSQL database ----------------------------------------------
CONFIG = """
[site]
title = "JadeTimes"
base_url = "https://jadetimes.example/"

[store]
url = "{url}"

[secrets]
token_key_env = "FEEDPUB_BENCH_SECRET"

{beats}

[[newsletters]]
slug = "daily"
title = "JadeTimes Daily"
from = "JadeTimes <news@jadetimes.example>"
schedule = "0 7 * * *"
postal_address = "12 Galle Road, Colombo 03"

[delivery]
backend = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
helo_name = "client.test"
pool_size = {pool}
"""


def newsroom(folder: Path, url: str, n: int, ports: list[int], k: int, pool: int) -> list[Path]:
    """Articles and n subscribers in the store; one config per instance (its sink)."""
    beats = "\n".join(f'[[beats]]\nslug = "{b}"\ntitle = "{b.title()}"\n' for b in BEATS)
    configs = []
    for i in range(k):
        path = folder / f"instance{i}.toml"
        path.write_text(
            CONFIG.format(url=url, beats=beats, port=ports[i % 2], pool=pool), encoding="utf-8"
        )
        configs.append(path)
    now = datetime.now(UTC)
    store = Store(url)
    seed_newsletter(store, n, BEATS, now)
    store.close()
    return configs


def run_instances(configs: list[Path], folder: Path) -> tuple[float, list[str]]:
    cmd = [sys.executable, "-m", "feedpub", "digest", "send", "daily", "--no-progress"]
    env = {**os.environ, "FEEDPUB_BENCH_SECRET": "bench-secret"}
    start = time.perf_counter()
    procs = [
        subprocess.Popen([*cmd[:3], "--config", str(c), *cmd[3:]], cwd=folder, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for c in configs
    ]  # fmt: skip
    outs = []
    for p in procs:
        o, e = p.communicate(timeout=3600)
        outs.append(f"exit {p.returncode}: {(o + e).decode().strip()[:300]}")
    return time.perf_counter() - start, outs


# ---- raw smtplib ------------------------------------------------------------------------------
def _raw_process(port: int, n: int, size: int, conns: int) -> None:
    head = b"Subject: raw\r\nFrom: news@jadetimes.example\r\n\r\n"
    body = head + (b"x" * 76 + b"\r\n") * max(1, size // 78)

    def one(count: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test")
        for i in range(count):
            smtp.sendmail("news@jadetimes.example", [f"reader{i}@example.org"], body)
        smtp.quit()

    share = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
    threads = [threading.Thread(target=one, args=(c,)) for c in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_raw(ctx: Any, ports: list[int], n: int, size: int, k: int, pool: int) -> None:
    share = [n // k + (1 if i < n % k else 0) for i in range(k)]
    procs = [ctx.Process(target=_raw_process, args=(ports[i % 2], share[i], size, pool))
             for i in range(k)]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=3000)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--instances", default="1,2,3")
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    counts = [int(x) for x in args.instances.split(",")]
    n = args.subscribers
    ctx = mp.get_context("spawn")
    admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    sinks = Sinks(ctx)
    rows: list[tuple[int, float, float, float, float]] = []
    try:
        for k in counts:
            name = f"feedpub_bench_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            try:
                with tempfile.TemporaryDirectory() as d:
                    configs = newsroom(Path(d), url, n, sinks.ports, k, args.pool)
                    sinks.reset()
                    wall, outs = run_instances(configs, Path(d))
                    got, size, window = sinks.totals()
                    if got != n or any(not o.startswith("exit 0") for o in outs):
                        print(f"{k} instance(s): sinks got {got} of {n}", *outs, sep="\n  ")
                    avg = size // max(got, 1)
                    sinks.reset()
                    run_raw(ctx, sinks.ports, n, avg, k, args.pool)
                    raw_got, _, raw_window = sinks.totals()
                    assert raw_got == n, f"raw: {raw_got} of {n}"
                    rows.append((k, window, wall, raw_window, avg))
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        sinks.stop()
        admin.dispose()
    print(f"scale_send: {n} subscribers, pool_size {args.pool}, two aiosmtpd sinks, "
          f"PostgreSQL, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    base = n / rows[0][1]
    base_wall = n / rows[0][2]
    raw_base = n / rows[0][3]
    for k, window, wall, raw_window, avg in rows:
        rate, wrate, raw = n / window, n / wall, n / raw_window
        print(f"  {k} instance(s): {rate:7.0f} msg/s at the sinks (x{rate / base:.2f}), "
              f"{wrate:6.0f} msg/s whole processes (x{wrate / base_wall:.2f}); raw smtplib "
              f"{raw:6.0f} msg/s (x{raw / raw_base:.2f}); feedpub = {rate / raw:.0%} of raw; "
              f"{avg / 1000:.1f} KB/message")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
