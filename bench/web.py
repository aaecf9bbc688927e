"""`feedpub serve` under load: 200 concurrent clients for 20 s, then a slowloris.

    .venv/bin/python bench/web.py                      # this checkout
    .venv/bin/python bench/web.py --feedpub-src /tmp/main/src   # another one (BEFORE)

Builds the sample newsroom (config.toml, content/) into a temporary folder, starts
``feedpub serve`` on 127.0.0.1 in its own process and measures it with wrk (Debian's
``wrk`` package: ``apt-get install wrk``), which prints requests/s, socket errors
(connect, read, write, timeout), non-2xx answers and the latency distribution (p99).
Each run is GET /rss.xml (a real feed) with and without ``Accept-Encoding: gzip``.

Then the slowloris: 1,000 connections that send half a request header and one more
header line every few seconds, held for ``--slowloris-seconds``; meanwhile a normal client
asks for /rss.xml twice a second. Printed: the server's thread count (peak), the normal
requests answered and their slowest time, and how many idle connections the server
closed by itself.

The machine is shared (2 cores, other engineers' jobs): figures vary between runs; the
client and the server share the cores.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("FEEDPUB_SECRET", "bench-web-key")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def build_site(folder: Path, env: dict[str, str]) -> Path:
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "content", folder / "content")
    if (ROOT / "templates").is_dir():
        shutil.copytree(ROOT / "templates", folder / "templates")
    cfg = folder / "config.toml"
    subprocess.run(
        [sys.executable, "-m", "feedpub", "--config", str(cfg), "publish"],
        check=True, capture_output=True, env=env, cwd=folder,
    )  # fmt: skip
    return cfg


def start_server(cfg: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # The server's log goes to a file: a pipe nobody reads would fill and block it.
    log = open(cfg.parent / "serve.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedpub", "--config", str(cfg), "--log-level", "ERROR",
         "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=cfg.parent,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(
        f"feedpub serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
    )


def threads_of(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return -1
    m = re.search(r"^Threads:\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else -1


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(url: str, seconds: int, connections: int, gzip: bool) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    if gzip:
        cmd += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs = [int(x) for x in m.groups()] if m else [0, 0, 0, 0]
    for k, v in zip(("connect", "read", "write", "timeout"), errs, strict=True):
        res[k] = v
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    res["max"] = _ms(m.group(1)) if m else float("nan")
    return res


def slowloris(port: int, pid: int, conns: int, seconds: float) -> None:
    # Connect all at once (non-blocking): a server that cannot accept them fast enough
    # shows as connections not established within 10 s.
    pending: list[socket.socket] = []
    for _ in range(conns):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        pending.append(s)
    socks: list[socket.socket] = []
    poller = select.poll()  # select() stops at 1,024 descriptors
    by_fd = {s.fileno(): s for s in pending}
    for fd in by_fd:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + 10
    while by_fd and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            s = by_fd.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    s.send(b"GET /rss.xml HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    socks.append(s)
                    continue
                except OSError:
                    pass
            s.close()
    for s in by_fd.values():
        s.close()
    refused = conns - len(socks)
    probes: list[float] = []
    failed = 0
    peak = threads_of(pid)
    closed_at: dict[int, float] = {}
    resets = 0
    start = time.monotonic()
    next_trickle = start
    while (now := time.monotonic()) - start < seconds:
        peak = max(peak, threads_of(pid))
        if now >= next_trickle:  # one more header line on every open connection
            next_trickle = now + 5
            for i, s in enumerate(socks):
                if i in closed_at:
                    continue
                try:
                    s.send(b"X-Slow: 1\r\n")
                except OSError:
                    closed_at[i] = now - start
        for i, s in enumerate(socks):  # did the server close it?
            if i in closed_at:
                continue
            try:
                if s.recv(4096) == b"":
                    closed_at[i] = now - start
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = now - start
                resets += 1
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(b"GET /rss.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := c.recv(65536):
                    data += chunk
            if data.startswith(b"HTTP/1.") and b" 200 " in data[:20]:
                probes.append(time.monotonic() - t0)
            else:
                failed += 1
        except OSError:
            failed += 1
        time.sleep(0.5)
    for s in socks:
        s.close()
    times = sorted(closed_at.values())
    when = f", first after {times[0]:.0f} s, last after {times[-1]:.0f} s" if times else ""
    slowest = f"{max(probes) * 1000:.0f} ms" if probes else "-"
    print(
        f"  slowloris: {len(socks)} connections held ({refused} not accepted) for {seconds:g} s: "
        f"server threads peak {peak}; normal requests meanwhile {len(probes)} ok, "
        f"{failed} failed, slowest {slowest}; closed by the server: {len(times)} "
        f"({resets} of them reset){when}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feedpub-src", type=Path, default=None, help="run feedpub from this src/")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--slowloris", type=int, default=1000)
    ap.add_argument("--slowloris-seconds", type=float, default=45)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/web.py needs wrk: apt-get install wrk")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    env = _env(args.feedpub_src.resolve() if args.feedpub_src else None)
    with tempfile.TemporaryDirectory(prefix="feedpub-bench-web-") as tmp:
        cfg = build_site(Path(tmp), env)
        port = _free_port()
        server = start_server(cfg, port, env)
        try:
            url = f"http://127.0.0.1:{port}/rss.xml"
            size = (
                len(subprocess.run(["curl", "-s", url], capture_output=True).stdout)
                if shutil.which("curl")
                else -1
            )
            print(
                f"feedpub serve ({args.feedpub_src or 'this checkout'}): {args.connections} "
                f"concurrent clients for {args.seconds} s, GET /rss.xml ({size} bytes); "
                f"wrk -t2, 30 s timeout; busy shared 2-core machine"
            )
            for gz in (False, True):
                r = wrk(url, args.seconds, args.connections, gz)
                errors = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["non2xx"]
                print(
                    f"  {'gzip    ' if gz else 'identity'}: {r['rps']:8.1f} requests/s "
                    f"({int(r['requests'])} requests)  errors {int(errors)} "
                    f"(connect {int(r['connect'])}, read {int(r['read'])}, write {int(r['write'])}, "
                    f"timeout {int(r['timeout'])}, non-2xx {int(r['non2xx'])})  "
                    f"p50 {r['p50']:.1f} ms  p99 {r['p99']:.1f} ms  max {r['max']:.1f} ms"
                )
                print(f"  server threads after the run: {threads_of(server.pid)}")
            slowloris(port, server.pid, args.slowloris, args.slowloris_seconds)
            lines = (cfg.parent / "serve.log").read_text(errors="replace").splitlines()
            warned = [x for x in lines if "level=warning" in x or "level=error" in x]
            print(f"  server log: {len(lines)} lines, {len(warned)} warnings or errors"
                  + (f"; first: {warned[0][:160]}" if warned else ""))  # fmt: skip
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
