"""GET /api/v1/stream as a client sees it on the wire: Server-Sent Events from the real app on a real socket, with
real PostgreSQL behind it and changes made on the database by another connection (no mocks).

A snapshot on connect, a change per activation or rollback (the activation sequence as the event id), resuming
with Last-Event-ID (on the same server or another one on the same database), heartbeats, one LISTEN connection
per server process whatever the number of clients, a slow client dropped without delaying the others, the
server's database going away and coming back, and a thousand clients at once.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from conftest import activate, start_server, stop_server
from server_support import Api, serving
from walltrack_config import lifecycle as lc
from walltrack_config.domains import DOMAINS

# -- a client of the stream -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    kind: str  # the SSE event name ('message' when none), or 'comment' for a line starting with ':'
    id: str | None
    data: Any  # the parsed JSON data, or the comment's text
    at: float  # time.monotonic() when it was read


END = Event("end", None, None, 0.0)  # the response ended (or was cut)


class Stream:
    """One SSE response read by a thread of its own; its events (comments included) come out of `events`."""

    def __init__(
        self,
        api: Api,
        role: str = "reader",
        *,
        domains: str | None = None,
        last_event_id: str | None = None,
        base: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api.tokens[role]}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=30))
        url = f"{base or api.base}/api/v1/stream" + (f"?domains={domains}" if domains is not None else "")
        self.response = self.client.send(self.client.build_request("GET", url, headers=headers), stream=True)
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.events: queue.Queue[Event] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.events.put(Event("comment", None, line[1:].strip(), time.monotonic()))
                elif line == "":
                    if fields:
                        data = json.loads(fields["data"]) if "data" in fields else None
                        self.events.put(Event(fields.get("event", "message"), fields.get("id"), data, time.monotonic()))
                        fields = {}
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value
        except (httpx.HTTPError, OSError):
            pass
        finally:
            self.events.put(END)

    def next(self, timeout: float = 5.0, *, comments: bool = False) -> Event:
        """The next event (heartbeat comments skipped unless asked for); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no event within {timeout} s") from None
            if got.kind != "comment" or comments:
                return got

    def quiet(self, seconds: float) -> list[Event]:
        """Whatever arrives (comments aside) within `seconds`: to show that nothing more does."""
        deadline, seen = time.monotonic() + seconds, []
        while (left := deadline - time.monotonic()) > 0:
            with suppress(queue.Empty):
                got = self.events.get(timeout=left)
                if got.kind != "comment":
                    seen.append(got)
        return seen

    def cut(self) -> None:
        """The connection broken under the reader (as a network failure would), then everything closed."""
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)
        with suppress(Exception):
            self.response.close()
        self.client.close()


@contextmanager
def streams(*made: Stream) -> Iterator[None]:
    try:
        yield
    finally:
        for stream in made:
            stream.cut()


# -- changes on the database, as any client of the lifecycle API makes them --------------------------------------


def rollback(
    url: str,
    domain: str = "risk",
    *,
    actor: str = "bob",
    reason: str | None = "undo",
    conn: psycopg.Connection | None = None,
) -> tuple[lc.ConfigRow, int]:
    with psycopg.connect(url, autocommit=True) if conn is None else nullcontext(conn) as use:
        row = lc.rollback(use, domain, actor=actor, reason=reason)
        seq = lc.last_activation(use, domain, row.id)
    assert seq is not None
    return row, seq.seq


def served(api: Api, activation: int, timeout: float = 10.0) -> None:
    """Wait until the server's stream hub has heard of this activation (it fans out from there)."""
    assert wait_until(lambda: api.app.state.server.hub.view.activation >= activation, timeout), activation


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def active_seq(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT max(seq) FROM walltrack.config_activations").fetchone()[0]


# -- snapshot and changes -----------------------------------------------------------------------------------------


def test_a_snapshot_of_every_domain_then_an_activation_and_a_rollback(migrated_db):
    with serving(migrated_db) as api:
        stream = Stream(api)
        with streams(stream):
            first = stream.next()
            assert first.kind == "snapshot" and first.id == str(first.data["activation"])
            assert first.data["activation"] == active_seq(migrated_db) and first.data["stale"] is False
            assert list(first.data["domains"]) == sorted(DOMAINS)
            risk = first.data["domains"]["risk"]
            with psycopg.connect(migrated_db) as conn:
                assert risk["id"] == str(lc.active_row(conn, "risk").id)
            assert risk["settings"]["max_order_attempts"] == 3

            row, seq = activate(migrated_db, actor="alice", reason="tighter", max_order_attempts=7)
            change = stream.next()
            assert (change.kind, change.id) == ("change", str(seq))
            data = change.data
            assert (data["domain"], data["id"], data["version"], data["activation"]) == (
                "risk",
                str(row.id),
                row.version,
                seq,
            )
            assert (data["actor"], data["reason"], data["settings"]["max_order_attempts"]) == ("alice", "tighter", 7)

            _, back_seq = rollback(migrated_db, actor="bob", reason="undo")
            change = stream.next()
            assert back_seq > seq and (change.kind, change.id) == ("change", str(back_seq))
            assert (change.data["id"], change.data["actor"], change.data["reason"]) == (risk["id"], "bob", "undo")
            assert change.data["settings"]["max_order_attempts"] == 3 and change.data["activation"] == back_seq
            assert stream.quiet(0.2) == []  # one event per change, nothing else


def test_domains_filter_the_snapshot_and_the_changes(migrated_db):
    with serving(migrated_db) as api:
        chosen, everything = Stream(api, domains="risk,trading"), Stream(api)
        with streams(chosen, everything):
            snapshot = chosen.next()
            assert snapshot.kind == "snapshot" and set(snapshot.data["domains"]) == {"risk", "trading"}
            assert everything.next().kind == "snapshot"
            _, exit_seq = activate(migrated_db, "exit", stagnation_hours=31)
            _, trading_seq = activate(migrated_db, "trading", base_position_pct=2)
            assert [everything.next().id, everything.next().id] == [str(exit_seq), str(trading_seq)]
            change = chosen.next()  # exit's change is not for it
            assert (change.id, change.data["domain"]) == (str(trading_seq), "trading")
            assert chosen.quiet(0.2) == []
        with api.client("reader") as http:
            assert http.get("/stream", params={"domains": "risk,nope"}).status_code == 404
        with api.client() as anonymous:
            assert anonymous.get("/stream").status_code == 401


# -- resuming -----------------------------------------------------------------------------------------------------


def test_last_event_id_resumes_with_only_what_was_missed(migrated_db):
    with serving(migrated_db) as api:
        stream = Stream(api)
        with streams(stream):
            snapshot = stream.next()
            _, seen = activate(migrated_db, max_order_attempts=5)
            assert stream.next().id == str(seen)
        # Cut; a change is made while this client is away.
        _, missed = activate(migrated_db, "trading", actor="carol", reason="while away", base_position_pct=3)
        served(api, missed)
        again = Stream(api, last_event_id=str(seen))
        with streams(again):
            first = again.next()
            assert (first.kind, first.id, first.data["actor"], first.data["reason"]) == (
                "change",
                str(missed),
                "carol",
                "while away",
            )
            _, later = activate(migrated_db, max_order_attempts=6)
            assert again.next().id == str(later)
            assert again.quiet(0.2) == []
        # An id from before anything was missed: nothing to send, and no snapshot either.
        caught_up = Stream(api, last_event_id=str(later))
        with streams(caught_up):
            assert caught_up.quiet(0.3) == []
        assert int(snapshot.id) < seen < missed < later


def test_an_unknown_last_event_id_gets_a_snapshot(migrated_db):
    with serving(migrated_db) as api:
        _, seq = activate(migrated_db, max_order_attempts=4)
        served(api, seq)
        for last_event_id in ("0", "garbage", "-3", "99999999999999999999999", "", "1e3"):
            stream = Stream(api, last_event_id=last_event_id)
            with streams(stream):
                snapshot = stream.next()
                assert (snapshot.kind, snapshot.id) == ("snapshot", str(seq)), last_event_id
                assert snapshot.data["domains"]["risk"]["settings"]["max_order_attempts"] == 4


def test_an_id_older_than_what_is_kept_gets_a_snapshot(migrated_db):
    with serving(migrated_db, stream_keep=2) as api:
        start = str(api.app.state.server.hub.view.activation)
        seqs = [activate(migrated_db, max_order_attempts=n)[1] for n in (4, 5, 6)]
        served(api, seqs[-1])
        too_old = Stream(api, last_event_id=start)  # three changes since, two kept
        oldest_kept = Stream(api, last_event_id=str(seqs[0]))  # what came after it is all kept
        newest = Stream(api, last_event_id=str(seqs[1]))
        with streams(too_old, oldest_kept, newest):
            snapshot = too_old.next()
            assert (snapshot.kind, snapshot.id) == ("snapshot", str(seqs[2]))
            assert snapshot.data["domains"]["risk"]["settings"]["max_order_attempts"] == 6
            assert [(e.kind, e.id) for e in (oldest_kept.next(), oldest_kept.next())] == [
                ("change", str(seqs[1])),
                ("change", str(seqs[2])),
            ]
            assert (newest.next().id, newest.quiet(0.2)) == (str(seqs[2]), [])


def test_two_servers_on_one_database_resume_each_others_ids(migrated_db):
    with serving(migrated_db) as a, serving(migrated_db, roles=False) as b:
        b.tokens = a.tokens
        on_a = Stream(a)
        with streams(on_a):
            on_a.next()
            _, seen = activate(migrated_db, max_order_attempts=5)
            assert on_a.next().id == str(seen)
        missed = [activate(migrated_db, "trading", base_position_pct=3)[1], rollback(migrated_db)[1]]
        served(b, missed[-1])
        on_b = Stream(b, last_event_id=str(seen))
        with streams(on_b):
            _, after = activate(migrated_db, "exit", stagnation_hours=30)
            got = [on_b.next() for _ in range(3)]
            assert [(e.kind, e.id) for e in got] == [("change", str(s)) for s in (*missed, after)]
            assert [e.data["domain"] for e in got] == ["trading", "risk", "exit"]
            assert on_b.quiet(0.3) == []  # no duplicates


# -- heartbeats, connections, slow clients -------------------------------------------------------------------------


def test_a_heartbeat_comment_keeps_an_idle_stream_open(migrated_db):
    with serving(migrated_db, heartbeat=0.2) as api:
        stream = Stream(api)
        with streams(stream):
            assert stream.next().kind == "snapshot"
            beats = [stream.next(2, comments=True) for _ in range(3)]
            assert [(b.kind, b.data) for b in beats] == [("comment", "heartbeat")] * 3
            assert 0.1 < beats[2].at - beats[1].at < 1.0


def test_one_listening_connection_whatever_the_number_of_clients(migrated_db):
    with serving(migrated_db, pool_size=3) as api:
        with api.client("reader") as http:
            assert http.get("/config").status_code == 200  # the token is checked once, then known
        clients = [Stream(api) for _ in range(50)]
        with streams(*clients):
            assert all(c.next().kind == "snapshot" for c in clients)
            assert api.app.state.server.hub.clients == 50
            with psycopg.connect(migrated_db, autocommit=True) as conn:
                found = dict(
                    conn.execute(
                        "SELECT application_name, count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND application_name LIKE 'walltrack-server%%'"
                        " GROUP BY 1"
                    ).fetchall()
                )
            assert found["walltrack-server-live"] == 1
            assert 1 <= found.get("walltrack-server", 0) <= 3
            _, seq = activate(migrated_db, max_order_attempts=5)
            assert all(c.next().id == str(seq) for c in clients)
        assert wait_until(lambda: api.app.state.server.hub.clients == 0, 5)


def raw_stream(api: Api, rcvbuf: int | None = None, path: str = "/api/v1/stream") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting: the window stays small
    host, port = api.base.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api.tokens['reader']}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    return sock


def test_a_client_that_does_not_read_is_dropped_and_delays_nobody(migrated_db):
    with serving(migrated_db, stream_queue=4) as api:
        hub = api.app.state.server.hub
        slow = raw_stream(api, rcvbuf=1024)  # never read until the end
        normal = Stream(api)
        with streams(normal), slow:
            assert normal.next().kind == "snapshot"
            assert wait_until(lambda: hub.clients == 2, 5)
            activate(migrated_db, "trading", base_position_pct=3)  # something to roll back to
            assert normal.next().kind == "change"
            delays, ids, expected, dropped_at = [], [], [], None
            with psycopg.connect(migrated_db, autocommit=True) as conn:
                # Rollbacks back and forth, each with a long reason (large events fill the buffers sooner), until
                # the slow client is dropped, and then some.
                for i in range(1000):
                    _, seq = rollback(migrated_db, "trading", conn=conn, reason=f"{i:06d}" + "x" * 100_000)
                    committed = time.monotonic()
                    got = normal.next(2)
                    expected.append(str(seq))
                    ids.append(got.id)
                    delays.append(got.at - committed)
                    if dropped_at is None and hub.clients == 1:
                        dropped_at = i
                    if dropped_at is not None and i >= dropped_at + 10:
                        break
            assert dropped_at is not None, "the slow client was never dropped"
            assert ids == expected  # the normal client got every change, in order
            print(
                f"slow client dropped after {dropped_at + 1} changes; normal client's delay: "
                f"p50 {statistics.median(delays) * 1e3:.1f} ms, max {max(delays) * 1e3:.1f} ms"
            )
            assert max(delays) < 1.0
            # Reading at last: what was queued, then resync, then the end of the response.
            slow.settimeout(10)
            received = b""
            while not received.endswith(b"0\r\n\r\n"):
                chunk = slow.recv(65536)
                assert chunk, "the connection closed before the response ended"
                received += chunk
            assert received.startswith(b"HTTP/1.1 200") and b"event: snapshot" in received
            resync = received.index(b"event: resync")
            assert b"event: change" in received[:resync] and b"event:" not in received[resync + 1 :]
            assert b"reconnect" in received[resync:]


def test_a_client_that_never_reads_is_let_go_once_a_write_waits_too_long(migrated_db, monkeypatch):
    from walltrack_config.server import stream as hub_module

    monkeypatch.setattr(hub_module, "SEND_TIMEOUT", 0.5)
    with serving(migrated_db, heartbeat=0.2) as api:
        hub = api.app.state.server.hub
        stuck = raw_stream(api, rcvbuf=1024)
        with stuck:
            assert wait_until(lambda: hub.clients == 1, 5)
            activate(migrated_db, "trading", base_position_pct=3)
            with psycopg.connect(migrated_db, autocommit=True) as conn:
                for i in range(30):  # large events, until its writer waits on full buffers
                    rollback(migrated_db, "trading", conn=conn, reason=f"{i:06d}" + "x" * 100_000)
                    if any(sub.writing for sub in hub._subscribers):
                        break
            assert wait_until(lambda: hub.clients == 0, 5)  # let go: it counts no more...
            stuck.settimeout(10)
            received = b""
            while chunk := stuck.recv(1 << 20):  # ...and its connection is closed, the response unfinished
                received += chunk
            assert received.startswith(b"HTTP/1.1 200") and not received.endswith(b"0\r\n\r\n")


# -- the server's database going away ------------------------------------------------------------------------------


def test_the_stream_says_when_the_server_loses_its_database_and_when_it_is_back(own_server):
    url = own_server.get_uri()
    with serving(url) as api:
        stream = Stream(api)
        with streams(stream):
            assert stream.next().data["stale"] is False
            stop_server(own_server)
            lost = stream.next(10)
            assert (lost.kind, lost.data) == ("status", {"connected": False, "stale": True})
            late = Stream(api)  # a client arriving meanwhile gets the settings, marked stale
            with streams(late):
                snapshot = late.next()
                assert snapshot.kind == "snapshot" and snapshot.data["stale"] is True
                assert snapshot.data["domains"]["risk"]["settings"]["max_order_attempts"] == 3
            start_server(own_server)
            back = stream.next(15)
            assert (back.kind, back.data) == ("status", {"connected": True, "stale": False})
            _, seq = activate(url, max_order_attempts=9)
            change = stream.next(10)
            assert (change.kind, change.id, change.data["settings"]["max_order_attempts"]) == ("change", str(seq), 9)


# -- a thousand clients ------------------------------------------------------------------------------------------

# Holds N streams in one asyncio task group (raw streams: light), prints 'ready' once each has its snapshot,
# then the time.monotonic() at which each received its first change, as a JSON list.
CLIENTS = r"""
import asyncio, json, sys, time
host, port, token, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
REQUEST = (f"GET /api/v1/stream?domains=risk HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           "Accept: text/event-stream\r\n\r\n").encode()

async def until(reader, marker):
    buf = b""
    while marker not in buf or not buf.endswith(b"\n\n\r\n"):  # the end of the event, and of its chunk
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("the server ended the stream")
        buf += chunk

async def client(gate, ready, arrivals, i):
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(REQUEST)
        await until(reader, b"event: snapshot")
    ready.append(i)
    if len(ready) == n:
        print("ready", flush=True)
    await until(reader, b"event: change")
    arrivals[i] = time.monotonic()
    writer.close()

async def main():
    gate, ready, arrivals = asyncio.Semaphore(100), [], [0.0] * n  # connect 100 at a time: the backlog is 128
    async with asyncio.TaskGroup() as group:
        for i in range(n):
            group.create_task(client(gate, ready, arrivals, i))
    print(json.dumps(arrivals), flush=True)

asyncio.run(asyncio.wait_for(main(), 60))
"""


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_a_thousand_clients_each_get_a_change_within_seconds(migrated_db):
    n = 1000
    raise_fd_limit(n + 1000)  # the server's end of each connection is in this process
    with serving(migrated_db) as api:
        with api.client("reader") as http:
            assert http.get("/config").status_code == 200
        host, port = api.base.removeprefix("http://").split(":")
        clients = subprocess.Popen(
            [sys.executable, "-c", CLIENTS, host, port, api.tokens["reader"], str(n)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in clients.stdout], daemon=True).start()
        try:
            assert lines.get(timeout=30).strip() == "ready"
            assert api.app.state.server.hub.clients == n
            activate(migrated_db, max_order_attempts=8)
            committed = time.monotonic()
            arrivals = json.loads(lines.get(timeout=30))
        finally:
            clients.kill()
            clients.wait(10)
        delays = sorted(at - committed for at in arrivals)
        p50, p99 = statistics.median(delays), delays[round(0.99 * (n - 1))]
        print(f"{n} clients: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, max {delays[-1] * 1e3:.1f} ms")
        assert len(delays) == n and delays[-1] < 5.0
        assert wait_until(lambda: api.app.state.server.hub.clients == 0, 10)


def test_a_stream_ends_when_its_token_is_revoked_and_its_session_role_change_is_rechecked(migrated_db):
    from walltrack_config import principals

    with serving(migrated_db) as api:
        api.tokens["doomed"] = api.token("doomed", "reader")
        doomed, other = Stream(api, "doomed"), Stream(api)
        with streams(doomed, other):
            assert doomed.next().kind == other.next().kind == "snapshot"
            with psycopg.connect(migrated_db, autocommit=True) as conn:
                principals.revoke_token(conn, "doomed", actor="tests")
            assert doomed.next().kind == "revoked"
            assert doomed.next() is END
            _, seq = activate(migrated_db, max_order_attempts=7)
            assert other.next().id == str(seq)  # the others stream on
        with httpx.Client(base_url=f"{api.base}/api/v1", timeout=10) as http:
            again = http.get("/stream", headers={"Authorization": f"Bearer {api.tokens['doomed']}"})
            assert again.status_code == 401


def test_resuming_while_the_server_has_no_database_says_the_settings_may_be_stale(migrated_db):
    with serving(migrated_db) as api:
        first = Stream(api)
        with streams(first):
            snapshot = first.next()
        hub = api.app.state.server.hub
        hub.status_threadsafe(False, "lost")  # as the listener reports a lost database, from its thread
        assert wait_until(lambda: not hub.connected, 5)
        resumed = Stream(api, last_event_id=snapshot.id)
        with streams(resumed):
            said = resumed.next()
            assert (said.kind, said.data) == ("status", {"connected": False, "stale": True})
