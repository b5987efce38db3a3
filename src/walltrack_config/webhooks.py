"""Webhooks (V14): each change event is POSTed, signed, to the webhooks subscribed to its kind.

The event and its pending deliveries are written in the change's own transaction (V14's outbox trigger); the
sending happens later, outside any change, by `Sender.send_due` (the server's background loop, or
`walltrack-config schedule run`), so a receiver that is down never blocks or undoes a change. A failed attempt
is retried with exponential backoff, up to 8 attempts. Secrets live in walltrack_auth.webhooks (readable by the
owner only): one is shown once when the webhook is added, and never logged, listed or put in an error.

An attempt has a hard deadline (`Sender.timeout`, 5 s), whatever the receiver does: httpx's timeouts are per step
(each read of a socket may wait that long), so a receiver dripping its answer a byte at a time would hold a send
for as long as it likes. A watchdog shuts the attempt's connection down at the deadline instead, which ends
whatever step it is in (the TLS handshake, a write, a read); the one step out of its reach is resolving the
receiver's host name, which the system's resolver bounds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import httpx

from .errors import FieldError, InvalidValue
from .events import limit_of, one_of, translated

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

WEBHOOKS, DELIVERIES = "walltrack_auth.webhooks", "walltrack.webhook_deliveries"
FORMATS = ("json", "slack", "discord")
KINDS = ("policy_changed", "request_created", "request_approved", "request_rejected", "request_voided",
         "request_applied", "activated", "rolled_back", "break_glass", "schedule_created", "schedule_cancelled",
         "schedule_executed", "schedule_failed", "schedule_missed", "client_stale", "webhook_added",
         "webhook_removed")
STATUSES = ("pending", "succeeded", "failed")
LEASE = 60.0  # seconds claim_deliveries keeps a claimed delivery from other senders
MAX_RETRY = 300.0  # seconds: the longest wait between two attempts
MAX_TEXT = 1900  # characters of a slack or discord message (discord refuses over 2000)
MAX_URL = 2000  # characters of a webhook's URL (V14's limit)
WATCH_POLL = 0.05  # seconds between two looks of an attempt's watchdog at whether the sender is stopping

Stop = threading.Event | Callable[[], bool]


@dataclass(frozen=True)
class Webhook:
    """A webhook as anyone may see it: never its secret."""

    id: UUID
    name: str
    url: str
    events: tuple[str, ...]  # kinds, or '*'
    format: str
    enabled: bool
    created_by: str
    created_at: datetime

    def json(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "url": self.url, "events": list(self.events),
                "format": self.format, "enabled": self.enabled, "created_by": self.created_by,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook: str  # its name (kept when the webhook is removed)
    kind: str
    event_seq: int
    status: str
    attempts: int
    last_status: int | None  # the receiver's last HTTP status
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    def json(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return None if at is None else at.isoformat()

        return {"id": self.id, "webhook": self.webhook, "kind": self.kind, "event_seq": self.event_seq,
                "status": self.status, "attempts": self.attempts, "last_status": self.last_status,
                "last_error": self.last_error, "created_at": iso(self.created_at),
                "delivered_at": iso(self.delivered_at), "next_attempt_at": iso(self.next_attempt_at)}


# -- managing ------------------------------------------------------------------------------------------------------


def add(conn: psycopg.Connection[Any], name: str, url: str, *, events: Iterable[str], secret: str | None = None,
        format: str = "json", actor: str) -> tuple[Webhook, str]:
    """A new webhook, and its secret: generated unless given, returned here once (the receiver's to keep)."""
    wanted = [e.strip() for e in events.split(",")] if isinstance(events, str) else list(events)
    problems = []
    if not wanted or any(e not in (*KINDS, "*") for e in wanted):
        problems.append(FieldError("events", f"each one of {', '.join(KINDS)}, or '*'"))
    url_problem = check_url(url)
    if url_problem is not None:
        problems.append(FieldError("url", url_problem))
    if format not in FORMATS:
        problems.append(FieldError("format", f"one of {', '.join(FORMATS)}"))
    if secret is not None and not (isinstance(secret, str) and 16 <= len(secret) <= 200):
        problems.append(FieldError("secret", "must be 16 to 200 characters"))  # never quoted
    if problems:
        raise InvalidValue(WEBHOOKS, problems)
    secret = secrets.token_urlsafe(32) if secret is None else secret
    with translated(WEBHOOKS, name=name), conn.transaction():
        made = conn.execute("SELECT walltrack.add_webhook(%s, %s, %s, %s, %s, %s)",
                            [name, url, wanted, secret, format, actor]).fetchone()
    return next(w for w in webhooks(conn) if made is not None and w.id == made[0]), secret


def check_url(url: object) -> str | None:
    """Why `url` cannot be a webhook's address (None: it can): an absolute http or https URL with a host, at
    most 2000 characters, no white space. The reason never quotes the URL, which may be a credential (Slack's and
    Discord's are)."""
    if not isinstance(url, str) or not url:
        return "required: an http:// or https:// address"
    if len(url) > MAX_URL:
        return f"at most {MAX_URL} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "no spaces or control characters"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "not a valid URL"
    if parsed.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parsed.host:
        return "must name a host, as in https://hooks.example.com/walltrack"
    return None


def remove(conn: psycopg.Connection[Any], name: str, *, actor: str) -> None:
    """Remove a webhook; its deliveries stay, with its name (NotFound if there is none of that name)."""
    with translated(WEBHOOKS, name=name), conn.transaction():
        conn.execute("SELECT walltrack.remove_webhook(%s, %s)", [name, actor])


def webhooks(conn: psycopg.Connection[Any]) -> list[Webhook]:
    query = ("SELECT id, name, url, events, format, enabled, created_by, created_at FROM walltrack_auth.webhooks"
             " ORDER BY lower(name), id")
    with translated(WEBHOOKS):
        found = conn.execute(query).fetchall()
    return [Webhook(id_, name, url, tuple(kinds), format, enabled, by, at)
            for id_, name, url, kinds, format, enabled, by, at in found]


def deliveries(conn: psycopg.Connection[Any], *, webhook: str | None = None, status: str | None = None,
               limit: int = 100) -> list[Delivery]:
    """Deliveries newest first, of one webhook (by name) and status (None: all)."""
    one_of(DELIVERIES, "status", status, STATUSES)
    query = ("SELECT id, webhook_name, kind, event_seq, status, attempts, last_status, last_error, created_at,"
             " delivered_at, next_attempt_at FROM walltrack.webhook_deliveries"
             " WHERE (%s::text IS NULL OR webhook_name = %s) AND (%s::text IS NULL OR status = %s)"
             " ORDER BY id DESC LIMIT %s")
    with translated(DELIVERIES):
        found = conn.execute(query, [webhook, webhook, status, status, limit_of(limit)])
        return [Delivery(*record) for record in found]


# -- the wire (pure) -------------------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """X-Walltrack-Signature: HMAC-SHA256 of "<timestamp>.<body>"; the timestamp signed, so a replay is datable."""
    mac = hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: int | str, body: bytes, signature: str) -> bool:
    """Whether `signature` is `body`'s at `timestamp`, compared in constant time (as a receiver checks it)."""
    try:
        expected = sign(secret, int(timestamp), body)
    except (TypeError, ValueError):
        return False
    return isinstance(signature, str) and hmac.compare_digest(expected.encode(), signature.encode())


def render(format: str, kind: str, payload: Mapping[str, Any], at: datetime, *,
           seq: int | None = None) -> dict[str, Any]:
    """The body of a delivery: the event itself (json), or a line of text (slack, discord)."""
    if format == "json":
        return {"kind": kind, "seq": seq, "at": at.isoformat(), "domain": payload.get("domain"),
                "payload": dict(payload)}
    text = summary(kind, payload)
    if format == "slack":  # Slack reads &, < and > as markup: escaped, a reason cannot ping or link
        return {"text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}
    if format == "discord":  # no mention in a reason pings anyone
        return {"content": text, "allowed_mentions": {"parse": []}}
    raise ValueError(f"unknown webhook format {format!r:.40}")


def summary(kind: str, payload: Mapping[str, Any]) -> str:
    """One line for a person, from what V14's payloads carry, e.g.
    "walltrack risk: request approved v3 (9f0e1234, request 5c2d7e1f) by bob 1/2 approvals: looks right"."""
    def value(key: str) -> Any:
        return payload.get(key) if payload.get(key) not in (None, "") else None

    head = f"walltrack {value('domain')}" if value("domain") else "walltrack"
    parts = [f"{head}: {kind.replace('_', ' ')}"]
    if value("name"):
        parts.append(f"'{value('name')}'")
    if value("version") is not None:
        parts.append(f"v{value('version')}")
    ids = [str(value("id"))[:8]] if value("id") else []
    ids += [f"{key} {str(value(key))[:8]}" for key in ("request", "schedule", "client", "webhook") if value(key)]
    if ids:
        parts.append(f"({', '.join(ids)})")
    who = value("approver") or value("by") or value("scheduled_by")
    if who:
        parts.append(f"by {who}")
    if kind == "policy_changed" and value("approvals") is not None:
        parts.append(f"to {value('approvals')} approvals (was {value('previous')})")
    elif value("approvals") is not None and value("required") is not None:
        parts.append(f"{value('approvals')}/{value('required')} approvals")
    if value("run_at"):
        parts.append(f"at {value('run_at')}")
    if kind in ("webhook_added", "webhook_removed"):  # its host, never its URL: the rest may be a credential
        if value("host"):
            parts.append(f"to {value('host')}")
        if value("format"):
            parts.append(f"({value('format')})")
        heard = value("events")
        if heard:
            heard = heard if isinstance(heard, list) else [heard]
            parts.append("hearing " + ", ".join("every event" if e == "*" else str(e) for e in heard))
    said = [str(value(key)) for key in ("reason", "comment", "why", "outcome") if value(key)]
    text = " ".join(parts) + (f": {'; '.join(said)}" if said else "")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def backoff(attempts: int, base: float = 1.0) -> timedelta:
    """How long after its `attempts`-th failed attempt a delivery is tried again: base * 2^(attempts-1), ≤ 300 s."""
    return timedelta(seconds=min(base * 2.0 ** min(max(attempts - 1, 0), 30), MAX_RETRY))


# -- sending -------------------------------------------------------------------------------------------------------


class _Claim(NamedTuple):
    id: int
    webhook_id: UUID
    url: str
    secret: str
    format: str
    kind: str
    event_seq: int
    payload: dict[str, Any]
    at: datetime
    attempts: int  # before this one

    def __repr__(self) -> str:  # never the secret, whatever prints it
        return f"_Claim(id={self.id}, kind={self.kind!r}, attempts={self.attempts})"


class DeadlineExceeded(Exception):
    """An attempt outlived its deadline (`Sender.timeout`): the receiver took too long to answer, all steps told."""


class _Stopped(Exception):
    """The sender was told to stop during an attempt: it is not counted (the delivery comes due again)."""


def _stopping(stop: Stop | None) -> Callable[[], bool]:
    if stop is None:
        return lambda: False
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


class _Watch:
    """One attempt's hard deadline. A thread of its own waits for it (or for the sender to be told to stop) and
    then shuts the attempt's connection down, which ends any step under way, however slowly the receiver
    drips. The connection is found through httpx's `trace` extension as it is made; the watch keeps a duplicate
    of its socket (shutting one down ends the connection itself), so it never touches a descriptor another part
    of the process may have been given since."""

    def __init__(self, deadline: float, stopping: Callable[[], bool]) -> None:
        self.deadline, self._stopping = deadline, stopping
        self.expired = self.stopped = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="walltrack-webhook-deadline", daemon=True)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self._stopping():
                return self._cut(stopped=True)
            left = self.left()
            if left <= 0:
                return self._cut(stopped=False)
            self._done.wait(min(left, WATCH_POLL))

    def _cut(self, *, stopped: bool) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.stopped, self.expired = stopped, not stopped
            for sock in self._sockets:
                _shut(sock)

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpx's trace hook: note each new connection's socket; refuse to begin a step once it is too late."""
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            raw = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(raw, socket.socket):
                try:
                    mine = raw.dup()
                except OSError:
                    return
                with self._lock:
                    self._sockets.append(mine)
                    if self.expired or self.stopped:
                        _shut(mine)
        elif event.endswith(".started") and any(step in event for step in _STEPS):
            # Only a step towards the receiver: closing (and cleaning up after an error) must go on.
            if self.stopped:
                raise _Stopped
            if self.expired or self.left() <= 0:
                raise DeadlineExceeded


_STEPS = ("connect_tcp", "start_tls", "send_request", "receive_response")  # httpcore's trace names of them


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already, or never connected
        sock.shutdown(socket.SHUT_RDWR)


class _UrlShield(logging.Filter):
    """httpx logs each request's full URL at INFO on its logger; a webhook's URL is a credential (Slack's and
    Discord's carry their token in the path). While a Sender posts to a URL, httpx's records show its origin only."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._sending: dict[str, int] = {}

    @contextlib.contextmanager
    def posting(self, url: str) -> Iterator[None]:
        url = str(httpx.URL(url))  # as httpx writes it in its record
        with self._lock:
            self._sending[url] = self._sending.get(url, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._sending.pop(url) - 1
                if left:
                    self._sending[url] = left

    def filter(self, record: logging.LogRecord) -> bool:
        if self._sending and isinstance(record.args, tuple):
            record.args = tuple(_origin(a) if str(a) in self._sending else a for a in record.args)
        return True


def _origin(url: object) -> str:
    parsed = httpx.URL(str(url))
    return f"{parsed.scheme}://{parsed.host}/…"


_SHIELD = _UrlShield()
logging.getLogger("httpx").addFilter(_SHIELD)


class Sender:
    """Sends due deliveries with httpx: used by the server loop and `schedule run`.

    `connect` lends a connection for a moment (a pool's `connection`), so none is held while a receiver answers.
    `timeout` is each attempt's deadline, all of it: connecting, sending and the receiver's answer.
    """

    def __init__(self, connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]], *,
                 timeout: float = 5.0, retry_base: float = 1.0, client: httpx.Client | None = None):
        from . import __version__

        self._connect, self.timeout, self.retry_base = connect, timeout, retry_base
        self._own = client is None
        # No connection is kept for the next attempt: each one's is made under its own watch (a kept one would be
        # out of the watchdog's reach, and a receiver's connection has nothing to share with the next's anyway).
        self._client = client if client is not None else httpx.Client(
            timeout=timeout, follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0))
        self.user_agent = f"walltrack-config/{__version__}"

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_due(self, limit: int = 20, *, stop: Stop | None = None) -> int:
        """Claim up to `limit` due deliveries, send each, record each outcome: how many were attempted.

        `stop` (an Event, or a callable saying whether to stop) ends the sending early: no attempt begins once it
        is set, and the one under way is cut off, not counted. What was claimed and not attempted comes due again
        when its lease runs out. A receiver's failure is recorded, never raised; a database error is
        (DatabaseUnavailable)."""
        stopping = _stopping(stop)
        if stopping():
            return 0
        query = ("SELECT id, webhook_id, url, secret, format, kind, event_seq, payload, at, attempts"
                 " FROM walltrack.claim_deliveries(%s)")
        with translated(DELIVERIES), self._connect() as conn, conn.transaction():
            claimed = [_Claim(*record) for record in conn.execute(query, [limit_of(limit)])]
        started, outcomes = time.monotonic(), []
        for claim in claimed:
            # Past half the lease, the rest are left to come due again (no attempt counted) rather than sent
            # while another sender may claim them too.
            if stopping() or time.monotonic() - started > LEASE / 2:
                break
            outcome = self._attempt(claim, stopping)
            if outcome is None:  # stopped during it
                break
            outcomes.append(outcome)
        if outcomes:
            with translated(DELIVERIES), self._connect() as conn, conn.transaction():
                for outcome in outcomes:
                    conn.execute("SELECT walltrack.finish_delivery(%s, %s, %s, %s, %s)", list(outcome))
        return len(outcomes)

    def _attempt(self, claim: _Claim, stopping: Callable[[], bool] = lambda: False
                 ) -> tuple[int, bool, int | None, str | None, timedelta] | None:
        """One attempt's outcome, as finish_delivery takes it; None when the sender was told to stop meanwhile.

        What is recorded of a failure is only its kind (the exception's class name, or the HTTP status): last_error
        is readable by every role, and an HTTP library's message may hold parts of the URL, itself a credential."""
        retry = backoff(claim.attempts + 1, self.retry_base)
        status: int | None = None
        with _Watch(time.monotonic() + self.timeout, stopping) as watch:
            try:
                body = json.dumps(render(claim.format, claim.kind, claim.payload, claim.at, seq=claim.event_seq),
                                  ensure_ascii=False, separators=(",", ":")).encode()
                timestamp = int(time.time())
                headers = {"Content-Type": "application/json", "User-Agent": self.user_agent,
                           "X-Walltrack-Event": claim.kind, "X-Walltrack-Delivery": str(claim.id),
                           "X-Walltrack-Timestamp": str(timestamp),
                           "X-Walltrack-Signature": sign(claim.secret, timestamp, body)}
                # No step may take longer than what is left; the watch ends the attempt at its deadline anyway.
                # Streamed and closed unread: a receiver's answer is its status, however large its body.
                with _SHIELD.posting(claim.url), self._client.stream("POST", claim.url, content=body, headers=headers,
                                         timeout=httpx.Timeout(max(watch.left(), 0.001)), follow_redirects=False,
                                         extensions={"trace": watch.trace}) as response:
                    status = response.status_code
            except Exception as exc:  # whatever the receiver's side did, it is this attempt's failure, not the loop's
                if status is None:  # else the receiver answered, and only closing its answer failed
                    if watch.stopped or isinstance(exc, _Stopped):
                        return None
                    error = DeadlineExceeded.__name__ if watch.expired else type(exc).__name__
                    log.info("webhook delivery %s (%s) failed: %s", claim.id, claim.kind, error)
                    return claim.id, False, None, error, retry
        if status is None:  # pragma: no cover - the request either answered or raised
            return None
        if 200 <= status < 300:
            return claim.id, True, status, None, retry
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        log.info("webhook delivery %s (%s) refused: %s", claim.id, claim.kind, error)
        return claim.id, False, status, error, retry
