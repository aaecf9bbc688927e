"""What the delivery ledger's durability costs: SQLite ``synchronous=FULL`` (feedpub's
setting: a commit is on disk before it returns) against ``NORMAL`` (WAL mode: the last
commits may be lost at a power cut), same run, same disk.

    .venv/bin/python bench/ledger.py [--subscribers 2000] [--folder DIR]

Each run freezes an edition for N subscribers and drains it through the DeliveryManager
with a messenger that accepts every message at once, so what is timed is the ledger: a
claim and a record (two commits) per message, plus the lease heartbeat. The store is a
file in ``--folder`` (default: a temporary folder on the disk the worktree is on; tmpfs
would hide the fsyncs). Busy shared machine: compare the two lines of one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from feedpub import schema as s  # noqa: E402
from feedpub.clock import running_from  # noqa: E402
from feedpub.delivery.base import OutgoingMessage  # noqa: E402
from feedpub.delivery.manager import DeliveryManager, LedgerRow  # noqa: E402
from feedpub.store import Store  # noqa: E402

NOW = datetime(2026, 11, 26, 7, tzinfo=UTC)


class Accept:
    def send(self, message: OutgoingMessage) -> None:
        pass

    def close(self) -> None:
        pass


def run(folder: Path, n: int, mode: str, round_: int) -> tuple[float, int]:
    path = folder / f"ledger-{mode}-{round_}.db"
    store = Store(f"sqlite:///{path}", synchronous=mode.lower())  # [store] sqlite_synchronous
    with store.begin() as conn:
        eid = conn.execute(
            sa.insert(s.editions).values(
                newsletter="daily", slot="2026-11-26T07:00Z", number=1, status="frozen",
                cutoff=NOW, since=NOW - timedelta(days=1), created=NOW, article_count=1,
                recipient_count=n,
            )
        ).inserted_primary_key[0]  # fmt: skip
        conn.execute(
            sa.insert(s.subscribers),
            [{"email": f"r{i}@example.org", "name": "", "status": "active", "hard_bounces": 0,
              "created": NOW, "updated": NOW} for i in range(n)],
        )  # fmt: skip
        ids = conn.execute(sa.select(s.subscribers.c.id)).scalars().all()
        conn.execute(
            sa.insert(s.deliveries),
            [{"edition_id": eid, "subscriber_id": sid, "email": f"r{sid}@example.org",
              "selection": "", "status": "queued", "attempts": 0, "message_id": f"{sid}@x",
              "updated": NOW} for sid in ids],
        )  # fmt: skip

    def compose(r: LedgerRow) -> OutgoingMessage:
        return OutgoingMessage(r.edition_id, r.subscriber_id, "a@x", r.email, r.message_id, b"x")

    manager = DeliveryManager(store, Accept(), clock=running_from(NOW))
    t0 = time.perf_counter()
    report = manager.deliver(eid, compose)
    wall = time.perf_counter() - t0
    with store.read() as conn:
        mode_now = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    store.close()
    assert report.sent == n, report
    assert mode_now == {"FULL": 2, "NORMAL": 1}[mode], mode_now
    return wall, report.sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=2000)
    ap.add_argument("--folder", type=Path, default=ROOT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder, prefix=".bench-ledger-") as d:
        print(
            f"ledger drain, {args.subscribers} messages (claim + record = 2 commits each), "
            f"SQLite file under {args.folder}; busy shared machine"
        )
        results = {}
        for i, mode in enumerate(("NORMAL", "FULL", "NORMAL", "FULL")):  # alternate
            wall, sent = run(Path(d), args.subscribers, mode, i)
            results.setdefault(mode, []).append(sent / wall)
        for mode, rates in results.items():
            best = max(rates)
            print(f"  synchronous={mode:<6} {best:8.0f} messages/s (best of {len(rates)})")
        full, normal = max(results["FULL"]), max(results["NORMAL"])
        print(f"  FULL costs {(1 / full - 1 / normal) * 1000:.2f} ms per message "
              f"({full / normal:.0%} of NORMAL's rate)")  # fmt: skip


if __name__ == "__main__":
    main()
