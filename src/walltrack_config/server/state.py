"""Everything a server process holds while it runs: the pool, the one listener, the snapshot, the authenticator,
the background rounds (due schedules, stale clients, webhook deliveries).

Opened by the app's lifespan and closed by it, so a SIGTERM lets in-flight requests finish, then stops the
background rounds and closes the listener and the pool's connections.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import db, schema
from ..domains import DOMAINS
from ..errors import DatabaseUnavailable
from ..live.engine import Listener, Reading
from .auth import Authenticator, principal_target
from .background import CHANNEL as CHANGES_CHANNEL
from .background import Background
from .console.setup import SetupLink
from .settings import ServerSettings
from .snapshot import Snapshot
from .stream import Hub

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger("walltrack_config.server")

APPLICATION = "walltrack-server"  # the pool's connections, as pg_stat_activity names them
PRINCIPALS_CHANNEL = "walltrack_principals"  # V12 notifies it when a user or token changes


class ServerState:
    def __init__(self, settings: ServerSettings) -> None:
        from psycopg_pool import ConnectionPool

        self.settings = settings
        lock_timeout = f"{int(settings.lock_timeout * 1000)}ms"

        def configure(conn: psycopg.Connection[Any]) -> None:
            # A write waits this long for another change's lock, then answers 503 (ConfigBusy), never hangs.
            conn.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])

        self.pool: ConnectionPool = ConnectionPool(
            settings.url, min_size=1, max_size=settings.pool_size, timeout=settings.pool_timeout, open=False,
            kwargs={"autocommit": True, "application_name": APPLICATION, "connect_timeout": db.CONNECT_TIMEOUT},
            configure=configure, check=ConnectionPool.check_connection, name="walltrack-server")
        self.snapshot = Snapshot()
        self.hub = Hub(settings.stream_queue, settings.stream_keep, settings.heartbeat, settings.stream_most)
        self.auth = Authenticator(self.connection, settings)
        self.setup = SetupLink(settings.setup_code)
        self.background = Background(self.connection, settings)
        # One listening connection for all: the config's changes, the principals', and V14's events (which
        # wake the background rounds: a new webhook delivery is sent at once, not at the next interval).
        self.listener = Listener(settings.url, DOMAINS, self._receive, on_connection=self.hub.status_threadsafe,
                                 application_name="walltrack-server-live",
                                 channels={PRINCIPALS_CHANNEL: self._principals_changed,
                                           CHANGES_CHANNEL: self.background.wake})

    def _principals_changed(self, payload: str | None) -> None:
        """A user or token changed (the listener's thread): forget what was remembered, end what it streams."""
        self.auth.forget(payload)
        self.hub.revoke_threadsafe(principal_target(payload))

    def _receive(self, reading: Reading) -> None:
        """The listener's readings (its thread): into the snapshot, then out to the stream's clients."""
        changed = self.snapshot.receive(reading)
        self.hub.publish_threadsafe(self.snapshot.view, changed)

    def open(self) -> None:
        """Load the active settings and start listening; DatabaseError when the database cannot be used."""
        failure = self.listener.connect()
        if failure is not None:
            raise failure
        self.listener.start()
        self.pool.open(wait=False)
        self.background.start()  # its first round at once: schedules that came due while no server ran

    def close(self) -> None:
        self.background.stop()  # first: it borrows the pool's connections
        self.listener.stop()
        self.auth.close()
        self.pool.close(timeout=5)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; DatabaseUnavailable when none can be had in time (the database is away)."""
        from psycopg_pool import PoolTimeout

        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            reason = self.listener.error or f"no connection within {self.settings.pool_timeout:g} s"
            raise DatabaseUnavailable("the database", reason) from exc

    def ready(self) -> tuple[bool, str]:
        """Whether this process can serve writes: its listener is connected and the schema is current.

        Anyone may ask, so the answer says what is wrong but not what libpq said (host, port, user): the log does.
        """
        if not self.listener.connected:
            log.info("not ready: listener not connected: %s", self.listener.error)
            return False, "not connected to the database; reconnecting"
        try:
            with self.connection() as conn:
                current = schema.version(conn)
        except Exception as exc:  # any failure here means "not ready"
            log.warning("not ready: %s", " ".join(str(exc).split()))
            return False, "the database does not answer"
        if current < schema.CHANGES:
            return False, f"database is at V{current}; this server needs V{schema.CHANGES}"
        return True, f"schema V{current}, listening"
