"""A webhook receiver on localhost for the tests: a real HTTP server in a thread that answers with the statuses
it is told, in order (then 200), and checks each request's signature with the secret, as a receiver would."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from walltrack_config import webhooks


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature checks out with the receiver's secret

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    delay: float = 0.0  # seconds before answering
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, headers: dict[str, str], body: bytes) -> int:
        signed = webhooks.verify(self.secret, headers.get("X-Walltrack-Timestamp", ""), body,
                                 headers.get("X-Walltrack-Signature", ""))
        with self.lock:
            self.received.append(Received(headers, body, signed))
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def receiving(secret: str, statuses: list[int] | None = None, *, delay: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(secret, list(statuses or []), delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.take(dict(self.headers.items()), body)
            time.sleep(receiver.delay)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released): a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
