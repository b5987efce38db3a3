"""The server's event stream as a source of live settings: what `Listener` is for the database, over HTTP.

A `StreamSource` reads GET /api/v1/stream (Server-Sent Events, parsed by httpx-sse) and hands each
snapshot or change to its sink as a `Reading`, like the listener does. When the stream breaks (the
server restarts, the network drops, nothing, not even a heartbeat, arrives for three heartbeats) it
reconnects after an exponential backoff with full jitter, so that a fleet of bots does not hit a restarted
server all at once, and resumes with Last-Event-ID: the server sends only what was missed, or a fresh
snapshot. `status` events say when the server itself lost its database: the settings may be stale.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import AuthenticationFailed, DatabaseUnavailable, UsageError
from .engine import ConnectionReport, Reading, Refused, Sink, one_line, row_from_json, tell

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("walltrack_config.live")

STREAM_PATH = "/api/v1/stream"
HEARTBEAT = 15.0  # the server's; three missed in a row mean the stream is dead
FIRST_DELAY = 0.1


def is_http(url: str | None) -> bool:
    return url is not None and url.lower().startswith(("http://", "https://"))


def shown(url: str) -> str:
    """The URL without any user or password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def backoff(attempt: int, first: float, most: float) -> float:
    """Full jitter: anywhere from 0 to the exponential delay, so reconnecting clients spread out."""
    return random.uniform(0, min(most, first * 2 ** min(attempt, 30)))


class StreamSource:
    def __init__(self, url: str, token: str | None, domains: Iterable[str], sink: Sink, *,
                 on_connection: ConnectionReport | None = None, max_backoff: float = 30.0,
                 heartbeat: float = HEARTBEAT, verify: bool | str = True) -> None:
        if not is_http(url):
            raise UsageError(f"not an http(s) URL: {shown(url)!r}")
        self.url = shown(url)
        self.domains = tuple(domains)
        self._endpoint = url.rstrip("/") + STREAM_PATH
        self._headers = {"Accept": "text/event-stream"} | ({"Authorization": f"Bearer {token}"} if token else {})
        self._sink, self._on_connection = sink, on_connection
        self._max_backoff, self._heartbeat, self._verify = max_backoff, heartbeat, verify
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None  # the open stream, for stop() to cut
        self._events: Iterator[Any] | None = None
        self._client: httpx.Client | None = None
        self.last_event_id: str | None = None
        self.connected = False
        self.error: str | None = None
        self.synced = 0.0

    # -- the same door as engine.Listener ------------------------------------------------

    def connect(self) -> Exception | None:
        """Open the stream and read its first event (the snapshot) into the sink, in the caller's thread."""
        try:
            self._open()
            self._next()
        except (OSError, ValueError, DatabaseUnavailable, _Broken) as exc:
            self._close()
            self.error = one_line(exc)
            return DatabaseUnavailable(self.url, self.error)
        return None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="walltrack-live-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._cut()
        if self._thread is not None:
            self._thread.join(10)
        self._close()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self._events is None:
                    self._open()
                    attempt = 0
                while not self._stop.is_set():
                    self._next()
            except AuthenticationFailed as exc:
                self.error = one_line(exc)
                log.error("the configuration server refused this client: %s; retrying", self.error)
                attempt = max(attempt, 8)  # not a blip: retry, but not often
            except (OSError, ValueError, DatabaseUnavailable, _Broken) as exc:
                if self._stop.is_set():
                    break
                self.error = one_line(exc) or type(exc).__name__
                if self.connected:
                    log.warning("lost the configuration server (%s); keeping the last good settings", self.error)
                    self._report(False, self.error)
            except Exception:  # a bug must not end the stream: log it and start over
                log.exception("configuration stream failed; restarting it")
            self._close()
            self.connected = False
            self._stop.wait(backoff(attempt, FIRST_DELAY, self._max_backoff))
            attempt += 1

    def _open(self) -> None:
        import httpx
        from httpx_sse import EventSource

        # Read timeout: three heartbeats without a byte and the server is gone, whatever TCP thinks.
        timeout = httpx.Timeout(10.0, read=3 * self._heartbeat)
        client = httpx.Client(timeout=timeout, verify=self._verify, headers=self._headers)
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        try:
            response = client.send(client.build_request("GET", self._endpoint, headers=headers), stream=True)
        except httpx.HTTPError as exc:
            client.close()
            raise _Broken(one_line(exc) or type(exc).__name__) from exc
        if response.status_code != 200:
            detail = _detail(response)
            response.close()
            client.close()
            if response.status_code in (401, 403):
                raise AuthenticationFailed(f"{self.url} answered {response.status_code}: {detail}")
            raise _Broken(f"{self.url} answered {response.status_code}: {detail}")
        with self._lock:
            self._client, self._response = client, response
            self._events = EventSource(response).iter_sse()
        was = self.connected
        self.connected, self.error = True, None
        if not was:
            log.info("streaming configuration changes from %s", self.url)
            self._report(True, None)

    def _next(self) -> None:
        """Read one event and act on it."""
        import httpx

        if self._events is None:
            raise _Broken("the stream is closed")
        try:
            sse = next(self._events)
        except StopIteration as exc:
            raise _Broken("the server ended the stream") from exc
        except httpx.HTTPError as exc:
            raise _Broken(one_line(exc) or type(exc).__name__) from exc
        self.synced = time.time()
        data = json.loads(sse.data) if sse.data else {}
        if sse.event == "snapshot":
            if isinstance(data.get("heartbeat"), int | float) and 0 < data["heartbeat"] <= 3600:
                self._heartbeat = float(data["heartbeat"])  # the next connection's read timeout follows it
            self._deliver(data.get("domains") or {})
            if data.get("stale"):  # served while the server has no database: no status event will say so
                self._server_status(False)
        elif sse.event == "change":
            self._deliver({str(data.get("domain")): data})
        elif sse.event == "status":
            self._server_status(bool(data.get("connected")))
        elif sse.event == "revoked":
            raise _Broken("the server ended the stream: its credentials changed")  # reconnect: checked again
        elif sse.event == "resync":
            self.last_event_id = None  # start over with a snapshot
            raise _Broken("the server asked for a resync")
        if sse.id:
            self.last_event_id = sse.id

    def _server_status(self, up: bool) -> None:
        self.connected = up
        self.error = None if up else "the configuration server lost its database; settings may be stale"
        self._report(up, self.error)

    def _deliver(self, entries: Mapping[str, Any]) -> None:
        rows, refused = {}, {}
        for domain, entry in entries.items():
            if domain not in self.domains or not isinstance(entry, dict):
                continue
            try:
                rows[domain] = row_from_json(domain, entry, "database")
            except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
                from uuid import UUID

                ident = entry.get("id")
                refused[domain] = Refused(domain, UUID(str(ident)) if ident else UUID(int=0),
                                          int(entry.get("activation") or 0),
                                          f"{domain} row {ident} from {self.url} cannot be read: {one_line(exc)}")
        self._sink(Reading(rows, refused))
        self.synced = time.time()

    def _report(self, connected: bool, error: str | None) -> None:
        tell(self._on_connection, connected, error)

    def _cut(self) -> None:
        """Wake a read blocked on the socket (from another thread): shut the socket down under it."""
        with self._lock:
            response = self._response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _close(self) -> None:
        with self._lock:
            response, client = self._response, self._client
            self._response = self._client = self._events = None
        for thing in (response, client):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()


class _Broken(Exception):
    """The stream ended or could not be opened: reconnect."""


def _detail(response: httpx.Response) -> str:
    try:
        response.read()
        return str(json.loads(response.text).get("detail", ""))[:200]
    except Exception:
        return response.reason_phrase
