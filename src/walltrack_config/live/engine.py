"""The listen → reload → compare engine: one connection that LISTENs, reads, and hands on what it read.

A `Listener` LISTENs on `walltrack_config` (V10 notifies it when a config goes live), reads the new active
row of each domain a notification names, and hands the rows to its sink. When its connection drops it
reconnects with backoff and reads every domain again, because notifications sent while it was away are
lost. It keeps no settings of its own: `LiveConfig` is one sink; a server can run one listener and fan
its readings out to many clients.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic
from uuid import UUID

from typing_extensions import TypeVar

from .. import db, lifecycle
from ..domains import DOMAINS
from ..errors import ConfigError, DatabaseError
from ..models import MODELS, Settings, plain

if TYPE_CHECKING:
    import psycopg

CHANNEL = "walltrack_config"
APPLICATION = "walltrack-live"  # the listening connection's application_name, as pg_stat_activity shows it
FIRST_DELAY = 0.05  # seconds before the first reconnection; it doubles up to max_backoff

log = logging.getLogger("walltrack_config.live")

S = TypeVar("S", bound=Settings, default=Settings, covariant=True)


@dataclass(frozen=True)
class LiveRow(Generic[S]):
    """One domain's active row as a running process holds it, with the activation that made it live.

    `LiveRow[RiskConfig]` is a risk row; a bare `LiveRow` holds some `Settings`.
    """

    domain: str
    id: UUID | None  # None: the built-in defaults
    version: int
    settings: S
    name: str = "built-in defaults"
    activated_at: datetime | None = None
    activation: int = 0  # the activation sequence (V11): grows with every activation, in commit order
    actor: str | None = None
    reason: str | None = None
    source: str = "database"  # or 'saved' (the file under WALLTRACK_HOME) or 'defaults'

    @property
    def key(self) -> tuple[UUID | None, int, int]:
        """What tells two live states apart: the same row may go live twice (a rollback)."""
        return self.id, self.version, self.activation


def row_json(row: LiveRow) -> dict[str, Any]:
    """A LiveRow as JSON-ready data: what LiveConfig saves, and what the server streams to bots."""
    return {"domain": row.domain, "id": str(row.id) if row.id else None, "version": row.version, "name": row.name,
            "activated_at": row.activated_at.isoformat() if row.activated_at else None,
            "activation": row.activation, "actor": row.actor, "reason": row.reason, "settings": plain(row.settings)}


def row_from_json(domain: str, entry: Mapping[str, Any], source: str) -> LiveRow:
    """The LiveRow `row_json` wrote (or a server sent); ValueError (pydantic's included) for anything else."""
    when = entry.get("activated_at")
    ident = entry.get("id")
    return LiveRow(domain, UUID(str(ident)) if ident else None, int(entry["version"]),
                   MODELS[domain].model_validate(entry["settings"]), str(entry.get("name") or "saved settings"),
                   datetime.fromisoformat(when) if isinstance(when, str) else None,
                   int(entry.get("activation") or 0), entry.get("actor"), entry.get("reason"), source=source)


@dataclass(frozen=True)
class Refused:
    """An active row the models refuse (a value stored before V11's checks): which one, and why."""

    domain: str
    id: UUID
    activation: int
    problem: str  # one line, naming the row and its fields


@dataclass(frozen=True)
class Reading:
    """What one read of the database found: each domain's live row, or why its active row is refused."""

    rows: Mapping[str, LiveRow]
    refused: Mapping[str, Refused]


Sink = Callable[[Reading], object]
ConnectionReport = Callable[[bool, str | None], object]
#: Runs in the listener's thread between waits, with its connection (for the fleet's reports: no second connection).
IdleHook = Callable[["psycopg.Connection[Any]"], object]
#: Hears a notification's payload on another channel, or None after a (re)connection: whatever was sent
#: while nobody listened is lost, so anything may have changed.
ChannelHandler = Callable[[str | None], object]


def tell(callback: ConnectionReport | None, connected: bool, error: str | None) -> None:
    """A source's connection news to its callback; a callback that raises is logged, never the source's end."""
    if callback is None:
        return
    try:
        callback(connected, error)
    except Exception:
        log.exception("a connection callback failed")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Listener:
    """One listening connection to the database, kept open, for the active rows of some domains.

    Each reading goes to `sink(reading)`: every domain after each (re)connection, then the domains a
    notification names. `on_connection(connected, error)` hears when the connection is lost and when it
    comes back. Both run in the listener's thread (in the caller's for `connect`); a sink that raises a
    DatabaseError ends the connection like the database would, and the listener connects again.
    """

    def __init__(self, url: str, domains: Iterable[str], sink: Sink, *,
                 on_connection: ConnectionReport | None = None, max_backoff: float = 1.0, poll: float = 0.5,
                 application_name: str = APPLICATION, channels: Mapping[str, ChannelHandler] | None = None,
                 on_idle: IdleHook | None = None) -> None:
        self.url = url
        self.domains = tuple(domains)
        self._wanted = frozenset(self.domains)
        self._sink = sink
        self._on_connection = on_connection
        self._max_backoff, self._poll, self._application = max_backoff, poll, application_name
        # Other channels on the same connection: a server process keeps one listening connection in all.
        self._channels = dict(channels or {})
        self._on_idle = on_idle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._first: psycopg.Connection[Any] | None = None  # from connect(), for the thread to go on with
        #: whether the listening connection is up
        self.connected = False
        #: the last connection failure, in one line (kept after reconnecting: see `connected`)
        self.error: str | None = None
        #: when the domains were last known current (time.time()): a read, a quiet poll, or a lost connection
        self.synced = 0.0

    # -- running ---------------------------------------------------------------------

    def connect(self) -> Exception | None:
        """Connect and LISTEN, then read every domain into the sink, in the caller's thread.

        Returns why it failed when the database cannot be reached or used (start() still goes on trying);
        anything else raises. Once connected, no change is missed: `start` listens on this connection.
        """
        import psycopg

        try:
            self._first = self._open()
        except (psycopg.OperationalError, DatabaseError) as exc:
            self.error = one_line(exc)
            return exc
        return None

    def start(self) -> None:
        """Listen on a thread: on the connection `connect` made, else on a new one (with backoff)."""
        first, self._first = self._first, None
        self._thread = threading.Thread(target=self._run, args=(first,), name=self._application, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._poll + 5)
        if self._first is not None:  # connected, never started
            self._first.close()
            self._first = None

    # -- the thread ------------------------------------------------------------------

    def _open(self) -> psycopg.Connection[Any]:
        """A connection that LISTENs, then every domain read through it: nothing committed in between is missed."""
        from psycopg import sql

        from .. import schema

        conn = db.connect(self.url, application_name=self._application, keepalive=True)
        try:
            schema.require(conn)
            for channel in (CHANNEL, *self._channels):
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._read(conn, self.domains)
            self._hear(None)
        except BaseException:
            conn.close()
            raise
        self.connected = True
        return conn

    def _run(self, conn: psycopg.Connection[Any] | None) -> None:
        import psycopg

        delay = FIRST_DELAY
        while not self._stop.is_set():
            try:
                lost = conn is None
                with conn if conn is not None else self._open() as listening:
                    delay = FIRST_DELAY
                    log.info("listening for configuration changes")
                    if lost:
                        self._report(True, None)
                    while not self._stop.is_set():
                        # Back at the first notification; psycopg keeps the ones that come during a read for us.
                        # Read them all first: the generator holds the connection's lock while it is open.
                        notes = list(listening.notifies(timeout=self._poll, stop_after=1))
                        for note in notes:
                            if note.channel != CHANNEL:
                                self._hear(note.payload, note.channel)
                        ours = [note for note in notes if note.channel == CHANNEL]
                        domains = {d for d in map(self._domain_of, ours) if d is not None}
                        self.synced = time.time()
                        if domains:
                            self._read(listening, sorted(domains))
                        if self._on_idle is not None:
                            self._on_idle(listening)
            except (psycopg.OperationalError, DatabaseError) as exc:
                self.error = one_line(exc)
                if self.connected:
                    log.warning("lost the database (%s); keeping the last good settings and reconnecting", self.error)
                    self._report(False, self.error)
            except Exception:  # a bug must not end the listener: log it and start over
                log.exception("configuration listener failed; restarting it")
            conn = None
            if self.connected:
                self.synced = time.time()
            self.connected = False
            self._stop.wait(delay)
            delay = min(delay * 2, self._max_backoff)

    def _domain_of(self, note: psycopg.Notify) -> str | None:
        """The domain a notification names; anything else (any role may NOTIFY this channel) is ignored."""
        try:
            domain = json.loads(note.payload)["domain"] if len(note.payload) < 1000 else None
        except Exception:  # malformed, or nested deep enough to exhaust the parser
            domain = None
        if isinstance(domain, str) and domain in DOMAINS:
            return domain if domain in self._wanted else None  # another process's domains: not news here
        log.warning("ignored a malformed notification: %.200r", note.payload)
        return None

    def _hear(self, payload: str | None, channel: str | None = None) -> None:
        """Hand a payload to its channel's handler; None (after connecting) to every handler."""
        chosen = self._channels.items() if channel is None else [(channel, self._channels[channel])]
        for name, handler in chosen:
            try:
                handler(payload)
            except Exception:
                log.exception("the handler of channel %s failed", name)

    def _report(self, connected: bool, error: str | None) -> None:
        tell(self._on_connection, connected, error)

    def _read(self, conn: psycopg.Connection[Any], domains: Iterable[str]) -> None:
        """Each domain's active row and its last activation, handed to the sink in one reading."""
        rows: dict[str, LiveRow] = {}
        refused: dict[str, Refused] = {}
        for domain in domains:
            row = lifecycle.active_row(conn, domain)
            activation = lifecycle.last_activation(conn, domain, row.id)
            if row.problems:
                refused[domain] = Refused(domain, row.id, activation.seq if activation else 0, _problem(row))
                continue
            rows[domain] = LiveRow(domain, row.id, row.version, row.settings, row.name,
                                   activation.activated_at if activation else row.updated_at,
                                   activation.seq if activation else 0,
                                   activation.performed_by if activation else row.updated_by,
                                   activation.reason if activation else None)
        self._sink(Reading(rows, refused))
        self.synced = time.time()


def _problem(row: lifecycle.ConfigRow) -> str:
    try:
        row.readable()
    except ConfigError as exc:
        return one_line(exc)
    return f"{row.domain} row {row.id} is unreadable"  # not reached: a row with problems is refused
