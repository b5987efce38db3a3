"""Benchmark: activation latency and typed reads on the embedded server.

    python benchmarks/lifecycle_bench.py [--runs 300]

Measured in one run, on one connection, after a warm-up:
  activate (api)   lifecycle.activate(): walltrack.activate_config plus reading the new row back, typed
  activate (sql)   SELECT walltrack.activate_config(...) alone: the database's share
  read 7 (api)     lifecycle.active() for all seven domains: typed models
  read 7 (sql)     the seven SELECT * ... WHERE status = 'active', rows as tuples: the baseline
Prints median and p99 of each and the API's ratio to its SQL baseline. Goal: activation p50 under 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99, temporary_server, timed
from walltrack_config import lifecycle as lc
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner
from walltrack_config.models import DOMAINS, MODELS


def sample(fn, runs: int) -> list[float]:
    return [timed(fn) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with temporary_server() as (_, url, _tmp), psycopg.connect(url, autocommit=True) as conn:
        runner.migrate(conn, migrations.discover(), "bench")
        drafts = iter([lc.clone(conn, "risk", actor="bench").id for _ in range(2 * args.runs + 20)])

        def api_activate() -> None:
            lc.activate(conn, "risk", next(drafts), expected_version=1, actor="bench", reason="benchmark")

        def sql_activate() -> None:
            conn.execute("SELECT walltrack.activate_config('risk', %s, 1, 'bench', 'benchmark')", [next(drafts)])

        queries = [sql.SQL("SELECT * FROM walltrack.{} WHERE status = 'active'").format(
            sql.Identifier(MODELS[d].table)) for d in DOMAINS]

        def api_read() -> None:
            for domain in DOMAINS:
                lc.active(conn, domain)

        def sql_read() -> None:
            for query in queries:
                conn.execute(query).fetchone()

        for fn in (api_activate, sql_activate):
            sample(fn, 10)  # warm-up
        results = {}
        for name, fn in (("activate (api)", api_activate), ("activate (sql)", sql_activate),
                         ("read 7 (api)", api_read), ("read 7 (sql)", sql_read)):
            results[name] = sample(fn, args.runs)

    print(f"lifecycle on embedded PostgreSQL, {args.runs} runs each")
    print(f"{'what':<16}{'median ms':>11}{'p99 ms':>9}{'vs sql':>9}")
    for name, values in results.items():
        base = results[name.replace("(api)", "(sql)")]
        ratio = statistics.median(values) / statistics.median(base)
        print(f"{name:<16}{statistics.median(values) * 1000:>11.3f}{p99(values) * 1000:>9.3f}{ratio:>8.2f}x")


if __name__ == "__main__":
    main()
