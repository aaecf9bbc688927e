"""SMTP benchmark: 2,000 messages of about 50 KB to a local aiosmtpd sink (its own process).

Compares, in the same run and against the same sink, a raw ``smtplib`` loop on one
connection with feedpub's ``SmtpMessenger`` (``send`` on one connection, and ``send_many``
over the default pool of 4 connections). Prints messages/s and the client's CPU per message
(process time of the sending process, all threads); target: feedpub >= 90% of raw.
Then the whole path: ``send_newsletter`` of an edition (25 articles) to as many
subscribers, over SMTP to the same sink: composition, the ledger's two commits per message
(claim before, result after) and the pooled sends. Optionally (``--dkim``) the cost of
DKIM signing one message, which runs in the pool.

    .venv/bin/python bench/smtp.py [--messages 2000] [--rounds 2] [--dkim]
"""

from __future__ import annotations

import argparse
import email.policy
import multiprocessing as mp
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from _seed import seed_newsletter  # bench/ is on sys.path when a script runs
from _sink import free_port
from _sink import sink as serve_sink

from feedpub.config import DkimConfig, SmtpConfig, parse_config
from feedpub.delivery.base import OutgoingMessage
from feedpub.delivery.dkim import DkimSigner
from feedpub.delivery.smtp import SmtpMessenger
from feedpub.digest import send_newsletter
from feedpub.store import Store


def make_messages(n: int, size: int = 50_000) -> list[OutgoingMessage]:
    para = (
        "Officials said the repairs would continue through the winter, while engineers "
        "warned that the grid remained fragile after months of strikes. "
    )
    out = []
    for i in range(n):
        to = f"reader{i}@example.org"
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = "Test Times <news@news.example>"
        msg["To"] = to
        msg["Subject"] = "Test Daily — 26 November"
        msg["Message-ID"] = f"<1.{i}@news.example>"
        msg["List-Unsubscribe"] = f"<https://news.example/u?t={i}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text = "\n".join(para for _ in range(size // 2 // len(para)))
        msg.set_content(text)
        msg.add_alternative("<p>" + text.replace("\n", "</p>\n<p>") + "</p>", subtype="html")
        out.append(OutgoingMessage(1, i, "news@news.example", to, f"1.{i}@news.example",
                                   msg.as_bytes()))  # fmt: skip
    return out


def raw_loop(port: int, msgs: list[OutgoingMessage]) -> None:
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test")
    for m in msgs:
        s.sendmail(m.envelope_from, [m.recipient], m.data)
    s.quit()


def feedpub_send(port: int, msgs: list[OutgoingMessage]) -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=port, helo_name="client.test", pool_size=1)
    with SmtpMessenger(cfg) as m:
        for msg in msgs:
            m.send(msg)


def feedpub_pool(port: int, msgs: list[OutgoingMessage]) -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=port, helo_name="client.test")  # pool_size 4
    errors = []
    with SmtpMessenger(cfg) as m:
        m.send_many(iter(msgs), lambda msg, err: errors.append(err) if err else None)
    assert not errors, errors[:3]


def full_send(port: int, n: int) -> tuple[float, float, int, str]:
    """send_newsletter over SMTP to n subscribers: (wall, cpu, sent, edition status)."""
    os.environ.setdefault("FEEDPUB_BENCH_SECRET", "bench-secret")
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        beats = ["world", "technology", "climate", "sri-lanka", "russia-ukraine-war"]
        config = parse_config(
            {
                "site": {"title": "JadeTimes", "base_url": "https://jadetimes.example/"},
                "store": {"url": f"sqlite:///{root / 'bench.db'}"},
                "beats": [{"slug": b, "title": b.title()} for b in beats],
                "newsletters": [
                    {"slug": "daily", "title": "JadeTimes Daily",
                     "from": "JadeTimes <news@jadetimes.example>", "schedule": "0 7 * * *",
                     "postal_address": "12 Galle Road, Colombo 03"}
                ],
                "delivery": {"backend": "smtp",
                             "smtp": {"host": "127.0.0.1", "port": port,
                                      "helo_name": "client.test"}},
                "secrets": {"token_key_env": "FEEDPUB_BENCH_SECRET"},
            },
            root=root,
        )  # fmt: skip
        store = Store(config.store_url)
        seed_newsletter(store, n, beats, now)
        wall, cpu = time.perf_counter(), time.process_time()
        report = send_newsletter(config, store, "daily", now=now)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        store.close()
    return wall, cpu, report.sent, report.status


def measure(fn: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def dkim_cost(msgs: list[OutgoingMessage]) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        return "DKIM: skipped (no openssl CLI to make a key)"
    with tempfile.TemporaryDirectory() as d:
        key = Path(d) / "k.pem"
        subprocess.run([openssl, "genrsa", "-traditional", "-out", str(key), "2048"],
                       check=True, capture_output=True)  # fmt: skip
        signer = DkimSigner(DkimConfig(selector="s", domain="news.example", key_file=key),
                            key.read_bytes())  # fmt: skip
    sample = msgs[:200]
    cpu = time.process_time()
    for m in sample:
        signer.sign(m.data)
    per = (time.process_time() - cpu) / len(sample) * 1000
    return f"DKIM (2048-bit RSA, relaxed/relaxed, dkimpy): {per:.2f} ms CPU per message signed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2, help="best of N rounds per client")
    ap.add_argument("--dkim", action="store_true", help="also time DKIM signing")
    args = ap.parse_args()

    msgs = make_messages(args.messages)
    avg = sum(len(m.data) for m in msgs) / len(msgs)
    port = free_port()
    ctx = mp.get_context("spawn")
    stats = ctx.Array("d", 4)  # messages, bytes, first and last arrival
    ready = ctx.Event()
    sink = ctx.Process(target=serve_sink, args=(port, stats, ready), daemon=True)
    sink.start()
    if not ready.wait(20):
        print("sink did not start", file=sys.stderr)
        return 1
    clients: list[tuple[str, Callable[[int, list[OutgoingMessage]], None]]] = [
        ("raw smtplib loop, 1 connection", raw_loop),
        ("feedpub send(), 1 connection", feedpub_send),
        ("feedpub send_many(), pool of 4", feedpub_pool),
    ]
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.rounds):
            for name, fn in clients:
                before = int(stats[0])
                wall, cpu = measure(lambda fn=fn: fn(port, msgs))  # type: ignore[misc]
                got = int(stats[0]) - before
                if got != len(msgs):
                    print(f"{name}: sink received {got} of {len(msgs)}", file=sys.stderr)
                    return 1
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
        before = int(stats[0])
        full = full_send(port, len(msgs))
        full_got = int(stats[0]) - before
    finally:
        sink.terminate()
        sink.join(5)

    n = len(msgs)
    raw_rate = n / best[clients[0][0]][0]
    print(f"SMTP bench: {n} messages of {avg / 1000:.1f} KB each to an aiosmtpd sink on "
          f"127.0.0.1 (separate process); best of {args.rounds} rounds")  # fmt: skip
    for name, _ in clients:
        wall, cpu = best[name]
        rate = n / wall
        print(f"  {name:32s} {rate:7.0f} msg/s  client CPU {cpu / n * 1000:5.3f} ms/msg  "
              f"{rate / raw_rate:6.1%} of raw")  # fmt: skip
    pool_rate = n / best[clients[2][0]][0]
    verdict = "PASS" if pool_rate >= 0.9 * raw_rate else "FAIL"
    print(f"target: feedpub >= 90% of the raw loop: {verdict} ({pool_rate / raw_rate:.0%})")
    fwall, fcpu, fsent, fstatus = full
    print(f"whole digest send (compose + ledger + SMTP, {fsent} subscribers, 25 articles): "
          f"{fsent / fwall:.0f} msg/s, client CPU {fcpu / max(fsent, 1) * 1000:.3f} ms/msg, "
          f"edition {fstatus}, sink received {full_got}")  # fmt: skip
    if args.dkim:
        print(dkim_cost(msgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
