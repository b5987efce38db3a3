"""Benchmark: wall time of operator commands, as an operator runs them.

    python benchmarks/cli_bench.py [--runs 20] [--url URL]

Cases, in one run:
  url            --database-url to a server already running (the embedded one's socket, or --url)
  embedded       no URL: the embedded server under WALLTRACK_HOME, already started
  embedded cold  no URL, the embedded server stopped before each run (it starts on demand): a few runs
Commands timed: `show trading`, and `set` + `activate --yes` (two processes; the draft is made untimed).
Baseline: `walltrack-config --help` (interpreter and import floor). Goal: under 0.5 s each on a running server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99

CLI = str(Path(sys.executable).with_name("walltrack-config"))


def run(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([CLI, *args], check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url", help="A running server to measure too (migrated by this script).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        base = {k: v for k, v in os.environ.items() if k != "WALLTRACK_DATABASE_URL"} | {"WALLTRACK_HOME": home}
        run(base, "db", "migrate")  # starts the embedded server and creates the tables
        socket_url = subprocess.run([sys.executable, "-c", "from walltrack_config import db; print(db.embedded_url())"],
                                    check=True, capture_output=True, text=True, env=base).stdout.strip()
        cases = {"url": (base, ["--database-url", args.url or socket_url]), "embedded": (base, [])}
        if args.url:
            run(base, "--database-url", args.url, "db", "migrate")
        results: dict[str, dict[str, list[float]]] = {}
        for name, (env, url) in cases.items():
            results[name] = measure(env, url, args.runs)
        cold = {"show trading": [], "set + activate": []}
        for i in range(max(3, args.runs // 5)):
            run(base, "embedded", "stop")
            cold["show trading"].append(run(base, "show", "trading"))
            run(base, "embedded", "stop")
            run(base, "draft", "risk")
            run(base, "embedded", "stop")
            cold["set + activate"].append(run(base, "set", "risk", f"max_order_attempts={5 + i % 2}")
                                          + run(base, "activate", "risk", "--yes"))
        results["embedded cold"] = cold
        helps = [run(base, "--help") for _ in range(args.runs)]
        run(base, "embedded", "stop")

    floor = statistics.median(helps)
    print(f"walltrack-config wall time, {args.runs} runs (embedded cold: {len(cold['show trading'])})")
    print(f"{'server':<15}{'command':<17}{'median s':>10}{'p99 s':>8}{'vs --help':>11}")
    for server, commands in results.items():
        for command, values in commands.items():
            print(f"{server:<15}{command:<17}{statistics.median(values):>10.3f}{p99(values):>8.3f}"
                  f"{statistics.median(values) / floor:>10.2f}x")
    print(f"{'-':<15}{'--help':<17}{floor:>10.3f}{p99(helps):>8.3f}{1:>10.2f}x")


def measure(env: dict[str, str], url: list[str], runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"show trading": [], "set + activate": []}
    for i in range(runs):
        out["show trading"].append(run(env, *url, "show", "trading"))
        run(env, *url, "draft", "risk")
        out["set + activate"].append(run(env, *url, "set", "risk", f"max_order_attempts={3 + i % 5 + 1}")
                                     + run(env, *url, "activate", "risk", "--yes"))
    return out


if __name__ == "__main__":
    main()
