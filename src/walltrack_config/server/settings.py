"""What a server process is told at start: where the data lives and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..exchange import MAX_FILE_BYTES


@dataclass(frozen=True)
class ServerSettings:
    url: str
    #: the largest request body; an import file may be MAX_FILE_BYTES, its JSON quoting aside
    body_limit: int = MAX_FILE_BYTES + (64 << 10)
    #: connections for writes and database reads (reads of the active settings come from memory)
    pool_size: int = 8
    #: how long a request waits for a pooled connection before answering 503
    pool_timeout: float = 3.0
    #: how long a write waits for another change's write lock before answering 503 (ConfigBusy)
    lock_timeout: float = 5.0
    #: served over TLS: cookies Secure, Strict-Transport-Security sent
    tls: bool = False
    #: failed sign-ins and token checks allowed per window, from one address and for one name
    failures_per_address: int = 20
    failures_per_name: int = 5
    failure_window: float = 60.0
    #: how long a session from POST /login lasts
    session_ttl: timedelta = timedelta(hours=12)
    #: a session not used for this long ends (a console left open and untouched signs out)
    session_idle: timedelta = timedelta(minutes=30)
    #: the first-run link's code (printed by serve when no user exists yet); None: no link
    setup_code: str | None = None
    #: how long a write waits for this server's memory to show the row it made live (read your writes)
    live_wait: float = 2.0
    #: events a stream client may have waiting before it counts as fallen behind (told to resync, dropped)
    stream_queue: int = 64
    #: change events kept for clients that reconnect with Last-Event-ID
    stream_keep: int = 1024
    #: seconds between the comment lines that keep an idle stream open
    heartbeat: float = 15.0
    #: stream clients one process holds at most (more answer 503: another server, or later)
    stream_most: int = 20_000
    #: a scheduled activation this late (the server was down at its time) is marked missed, not run
    schedule_grace: timedelta = timedelta(minutes=5)
    #: seconds before a failed webhook delivery's first retry; it doubles with each attempt, up to 5 minutes
    webhook_retry_base: float = 1.0
    #: seconds between two rounds of the background work: due schedules, stale clients, webhook deliveries
    background_interval: float = 0.5
