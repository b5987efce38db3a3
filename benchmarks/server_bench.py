"""Benchmark: the REST API under load from a second process (Debian's `wrk`), one uvicorn worker.

    python benchmarks/server_bench.py [--rounds 5] [--seconds 3] [--connections 32] [--writes 300]

One server process (uvicorn, one worker) on a throw-away embedded PostgreSQL, the same app as
`walltrack-config serve` plus two routes only this benchmark mounts; wrk (one thread) on the other core.
Endpoints, interleaved round by round so each sees the same machine:
  bare           GET /api/v1/bench/bare: constant JSON through the same middleware, no auth (the ceiling)
  config         GET /api/v1/config with a bearer token: every domain's active settings, from memory
  config 304     the same with If-None-Match: the current ETag
  select         GET /api/v1/bench/select with a bearer token: the same document read with a SELECT per request
Prints requests/s (median of the rounds) and wrk's p50/p99 latency, the ratios config/bare and config/select,
then the p50/p99 of PATCH + activate over HTTP (a sequential client; a new draft each time, not timed).
Goals: config >= 5,000 req/s and >= 0.8x bare; 304 at least as fast as config; p99 PATCH + activate <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Request, Response

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99, temporary_server
from walltrack_config.server.deps import Reader, server

LUA = """wrk.headers["Authorization"] = "Bearer {token}"
{extra}"""


def bench_app(url: str) -> Any:
    """The served app, plus a bare route (the ceiling) and a SELECT-per-request route (the baseline)."""
    from walltrack_config.domains import DOMAINS
    from walltrack_config.server.app import PREFIX, create_app
    from walltrack_config.server.settings import ServerSettings

    app = create_app(ServerSettings(url=url))
    bare = json.dumps({"status": "ok"}).encode()
    union = " UNION ALL ".join(
        f"SELECT '{d}' AS domain, to_jsonb(t) AS row FROM walltrack.{d}_config t WHERE status = 'active'"
        for d in DOMAINS)

    @app.get(f"{PREFIX}/bench/bare", include_in_schema=False)
    async def bare_route() -> Response:
        return Response(bare, media_type="application/json")

    @app.get(f"{PREFIX}/bench/select", include_in_schema=False)
    def select_route(request: Request, who: Reader) -> Response:
        with server(request).connection() as conn:
            rows = conn.execute(union).fetchall()
        return Response(json.dumps({"domains": dict(rows)}, default=str).encode(), media_type="application/json")

    return app


def serve(url: str, port: int) -> None:
    import uvicorn

    from walltrack_config.server.run import Server  # what `walltrack-config serve` runs

    Server(uvicorn.Config(bench_app(url), host="127.0.0.1", port=port, log_level="warning", access_log=False)).run()


def wrk(url: str, token: str, seconds: float, connections: int, extra: str = "") -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(token=token, extra=extra))
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script.name, url],
                          capture_output=True, text=True, check=True)
    Path(script.name).unlink()
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx[1]} failed responses\n{out}")

    def latency(pct: str) -> float:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return {"rps": rps, "p50": latency("50"), "p99": latency("99")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    import httpx
    import psycopg

    from walltrack_config import principals
    from walltrack_config.migrate import plan as migrations
    from walltrack_config.migrate import runner

    with temporary_server() as (_, url, _tmp):
        with psycopg.connect(url, autocommit=True) as conn:
            runner.migrate(conn, migrations.discover(), "bench")
            _, token = principals.create_token(conn, "bench", "operator", actor="bench")
        port = 18000 + int(time.time()) % 1000
        proc = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            for _ in range(300):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            etag = client.get("/config").headers["etag"]
            targets = {
                "bare": (f"{base}/bench/bare", ""),
                "config": (f"{base}/config", ""),
                "config 304": (f"{base}/config", f'wrk.headers["If-None-Match"] = {json.dumps(etag)}'),
                "select": (f"{base}/bench/select", ""),
            }
            for url_, extra in targets.values():  # warm-up
                wrk(url_, token, 1, args.connections, extra)
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, (url_, extra) in targets.items():
                    results[name].append(wrk(url_, token, args.seconds, args.connections, extra))
            report(results, args)
            writes(client, args.writes)
        finally:
            proc.terminate()
            proc.wait(10)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    print(f"wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.seconds:g} s, one uvicorn worker")
    print(f"{'endpoint':<12} {'req/s (median)':>15} {'min':>9} {'max':>9} {'p50 ms':>8} {'p99 ms':>8}")
    median = {}
    for name, runs in results.items():
        rps = [r["rps"] for r in runs]
        median[name] = statistics.median(rps)
        print(f"{name:<12} {median[name]:>15,.0f} {min(rps):>9,.0f} {max(rps):>9,.0f} "
              f"{statistics.median(r['p50'] for r in runs):>8.2f} {statistics.median(r['p99'] for r in runs):>8.2f}")
    print(f"config / bare   = {median['config'] / median['bare']:.2f}   (goal >= 0.80)")
    print(f"config / select = {median['config'] / median['select']:.2f}   (the SELECT-per-request baseline)")
    print(f"304 / config    = {median['config 304'] / median['config']:.2f}   (goal >= 1.00)")
    print(f"config req/s    = {median['config']:,.0f}   (goal >= 5,000)")


def writes(client: Any, runs: int) -> None:
    samples = []
    for _ in range(runs + 20):
        draft = client.post("/config/risk/drafts", json={}).json()
        started = time.perf_counter()
        edited = client.patch(f"/config/risk/drafts/{draft['id']}", headers={"If-Match": str(draft["version"])},
                              json={"settings": {"max_order_attempts": 3 + len(samples) % 5}})
        live = client.post(f"/config/risk/drafts/{draft['id']}/activate",
                           json={"expected_version": edited.json()["version"], "reason": "bench"})
        elapsed = time.perf_counter() - started
        if edited.status_code != 200 or live.status_code != 200:
            raise SystemExit(f"write failed: {edited.text} {live.text}")
        samples.append(elapsed)
    samples = samples[20:]  # warm-up
    print(f"PATCH + activate over HTTP, {runs} runs: p50 {statistics.median(samples) * 1e3:.2f} ms, "
          f"p99 {p99(samples) * 1e3:.2f} ms   (goal p99 <= 20 ms)")


if __name__ == "__main__":
    main()
