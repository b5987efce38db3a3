"""Serving the API in a test: the real app on a real socket (uvicorn in a thread), real PostgreSQL behind it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import uvicorn

from walltrack_config import principals
from walltrack_config.domains import Role
from walltrack_config.server.app import create_app
from walltrack_config.server.run import Server
from walltrack_config.server.settings import ServerSettings


@dataclass
class Api:
    base: str  # http://127.0.0.1:PORT
    db: str  # the database URL behind it
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)  # role -> a token of that role, named after it

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=f"{self.base}/api/v1", headers=headers, timeout=30, **kwargs)

    def token(self, name: str, role: str) -> str:
        with psycopg.connect(self.db, autocommit=True) as conn:
            _, secret = principals.create_token(conn, name, role, actor="tests")
        return secret


def free_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


@contextmanager
def serving(db_url: str, *, roles: bool = True, port: int = 0, forwarded: str | None = None,
            **settings: Any) -> Iterator[Api]:
    """The app on a socket of its own until the block ends; with a token per role (`reader`, `editor`, …).

    `port`: 0 for any free one; a given one to start a server again where its clients expect it.
    `forwarded`: the proxies trusted for X-Forwarded-For/-Proto (serve's --forwarded-allow-ips).
    """
    app = create_app(ServerSettings(url=db_url, **settings))
    sock = free_socket(port)
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                                   proxy_headers=forwarded is not None, forwarded_allow_ips=forwarded))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]
    api = Api(f"http://127.0.0.1:{port}", db_url, app)
    if roles:
        api.tokens = {role: api.token(f"{role}-token", role) for role in (r.value for r in Role)}
    try:
        yield api
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
