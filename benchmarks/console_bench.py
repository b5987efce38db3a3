"""Benchmark: how long the console's pages take to render, on the embedded PostgreSQL, as `serve` runs them.

    python benchmarks/console_bench.py [--requests 200]

One server process (the app `walltrack-config serve` runs, uvicorn, one worker) on a throw-away embedded
PostgreSQL with a few activations, drafts, fleet clients and history behind it; this process signs in as an
admin and fetches each page `--requests` times, one after another (a person's browser: one request at a time),
timing from request to the last byte. Pages are interleaved so that each sees the same machine. Beside them,
in the same run, GET /api/v1/readyz (the cheapest answer the server gives: the floor) as a baseline.
Prints p50, p99 and max per page, and each page's p50 over the baseline's.
Goal: every page p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99, temporary_server

GOAL = 0.200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, port: int) -> None:
    import uvicorn

    from walltrack_config.server.app import create_app
    from walltrack_config.server.run import Server
    from walltrack_config.server.settings import ServerSettings

    config = uvicorn.Config(create_app(ServerSettings(url=url)), host="127.0.0.1", port=port, log_level="warning")
    Server(config).run()


def populate(url: str) -> dict[str, str]:
    """History, drafts and a fleet worth showing; the paths of an editor page and a diff page."""
    import psycopg

    from walltrack_config import fleet, lifecycle, principals

    with psycopg.connect(url, autocommit=True) as conn:
        principals.add_user(conn, "bench", "admin", "a long bench password", actor="bench")
        for i in range(40):  # 40 activations of risk: 120 audit entries
            draft = lifecycle.clone(conn, "risk", actor="bench")
            draft = lifecycle.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 3 + i % 5},
                                   actor="bench")
            lifecycle.activate(conn, "risk", draft.id, expected_version=draft.version, actor="bench", reason="bench")
        draft = lifecycle.clone(conn, "trading", actor="bench")
        for n in range(20):
            info = fleet.info_for(f"bot-{n}", "database")
            fleet.report(conn, info, fleet.current(conn))
        principals.create_token(conn, "reader", "reader", actor="bench")  # the admin page lists a token
    return {"editor": f"/domains/trading/drafts/{draft.id}", "diff": f"/domains/trading/diff?a=active&b={draft.id}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))

    import httpx
    import psycopg

    from walltrack_config.migrate import plan as migrations
    from walltrack_config.migrate import runner

    with temporary_server() as (_, url, _tmp):
        with psycopg.connect(url, autocommit=True) as conn:
            runner.migrate(conn, migrations.discover(), "bench")
        extra = populate(url)
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            client = httpx.Client(base_url=base, timeout=30)
            form = client.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf, "no sign-in form"
            signed = client.post("/login", data={"csrf": csrf[1], "name": "bench", "password": "a long bench password"},
                                 headers={"origin": base}, follow_redirects=False)
            assert signed.status_code == 303, signed.text[:300]
            pages = {"baseline: /api/v1/readyz": "/api/v1/readyz", "overview": "/", "domain": "/domains/trading",
                     "editor": extra["editor"], "diff": extra["diff"], "history": "/history",
                     "history risk": "/history?domain=risk", "fleet": "/fleet", "exchange": "/exchange",
                     "admin": "/admin"}
            samples: dict[str, list[float]] = {label: [] for label in pages}
            for path in pages.values():  # warm-up, and every page answers
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
            for _ in range(args.requests):
                for label, path in pages.items():
                    started = time.perf_counter()
                    answer = client.get(path)
                    _ = answer.content
                    samples[label].append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(30)

    floor = statistics.median(samples["baseline: /api/v1/readyz"])
    print(f"console pages, {args.requests} requests each, one at a time, one uvicorn worker, embedded PostgreSQL")
    print(f"{'':<28}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'p50/base':>10}")
    worst = 0.0
    for label, got in samples.items():
        print(f"{label:<28}{statistics.median(got) * 1e3:>9.2f}{p99(got) * 1e3:>9.2f}{max(got) * 1e3:>9.2f}"
              f"{statistics.median(got) / floor:>9.1f}x")
        if not label.startswith("baseline"):
            worst = max(worst, p99(got))
    print(f"slowest page p99 {worst * 1e3:.1f} ms (goal < {GOAL * 1e3:.0f} ms): {'met' if worst < GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
