"""Leader takeover: real `feedpub run` processes on one PostgreSQL store (tests/cluster.py).

- SIGKILL: the leader is killed at a random moment of its lease; measured from the kill to
  the moment another instance holds the lease (the `leases` row changes holder), and to
  the new leader's first recorded build. Repeated --runs times (the killed instance is
  started again each time, so there are always --instances running).
- SIGTERM: the leader is stopped cleanly; measured from the signal to the new holder
  (a clean stop releases the lease, so a standby takes it at its next round).

    .venv/bin/python bench/scale.py [--runs 5] [--lease 15] [--instances 2]

Needs the PostgreSQL on 127.0.0.1:5432 (FEEDPUB_TEST_POSTGRES_ADMIN_URL elsewhere).
Send throughput of 1-3 instances is bench/scale_send.py.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import Cluster  # noqa: E402

from feedpub import schema as s  # noqa: E402

ADMIN = os.environ.get(
    "FEEDPUB_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _builds(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(s.runs).where(s.runs.c.kind == "build")
            ).scalar_one()
        )


def measure(c: Cluster, engine: sa.Engine, sig: signal.Signals) -> tuple[float, float]:
    lead = c.wait_leader(engine, 60)
    # Steady state (the leader's start-up work done, every instance up), then a random
    # point of the renewal cycle (a third of the lease).
    time.sleep(c.lease + random.uniform(0, c.lease / 3))
    builds = _builds(engine)
    t0 = time.monotonic()
    c.proc(lead.pid).send_signal(sig)
    new = c.wait_leader(engine, 4 * c.lease + 30, other_than=lead.pid)
    t1 = time.monotonic()
    c.wait_for(lambda: _builds(engine) > builds, 60, name="a build")  # the new leader's first
    t2 = time.monotonic()
    c.proc(lead.pid).wait(30)
    assert new.token > lead.token
    c.start(1)  # back to N instances
    return t1 - t0, t2 - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lease", type=int, default=15, help="[schedule] leader_lease, seconds")
    ap.add_argument("--instances", type=int, default=2)
    args = ap.parse_args()
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"feedpub_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    os.environ.setdefault("FEEDPUB_TEST_SECRET", "bench-secret")
    try:
        with tempfile.TemporaryDirectory(prefix="feedpub-scale-") as tmp:
            c = Cluster(Path(tmp) / "room", url, lease=args.lease, collect_every=60)
            c.setup()
            engine = c.engine()
            try:
                c.start(args.instances)
                c.wait_leader(engine, 60)
                kill = [measure(c, engine, signal.SIGKILL) for _ in range(args.runs)]
                term = [measure(c, engine, signal.SIGTERM) for _ in range(args.runs)]
            finally:
                c.stop_all()
                engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    print(
        f"leader takeover, {args.instances} instances, leader_lease {args.lease}s "
        f"(renewed every {args.lease / 3:g}s, a standby tries every {args.lease / 3:g}s), "
        f"{args.runs} runs each"
    )
    for label, rows in (("SIGKILL", kill), ("SIGTERM", term)):
        lease_s = [r[0] for r in rows]
        build_s = [r[1] for r in rows]
        print(
            f"  {label}: new holder after median {statistics.median(lease_s):.2f}s "
            f"(min {min(lease_s):.2f}, max {max(lease_s):.2f}); its first build done after "
            f"median {statistics.median(build_s):.2f}s (min {min(build_s):.2f}, "
            f"max {max(build_s):.2f})"
        )


if __name__ == "__main__":
    main()
