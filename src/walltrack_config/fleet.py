"""The fleet (V13): every live client registers itself and reports the activation it applied per domain.

A client (a bot's LiveConfig, over HTTP or on the database) reports through `walltrack.fleet_report`,
which checks every argument and writes `walltrack.fleet_clients` as its owner, so a role that may only read
the config tables can report. A client not heard from for 3 of its heartbeats is stale; one not heard from
for 24 h is deleted by a later report. Several servers on one database see one fleet.

After an activation, `wait_applied` waits until every live (non-stale) client following the domain
reported that activation or a later one, by polling: the wait is rare and short, and polling costs one
small query per poll for the one waiting, where a NOTIFY per report would cost every report a commit
through PostgreSQL's one notification queue, whether anyone waits or not.
"""

from __future__ import annotations

import bisect
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString
from uuid import UUID

from . import db
from .domains import DOMAINS
from .errors import (
    ConfigError,
    DatabaseUnavailable,
    FieldError,
    InvalidTransition,
    InvalidValue,
    NotFound,
    UnknownDomain,
)

if TYPE_CHECKING:
    import psycopg

TABLE = "walltrack.fleet_clients"
HEARTBEAT = 15.0  # seconds between a client's reports, unless it says otherwise
STALE_AFTER = 3  # heartbeats without a report, and a client is stale
MAX_CLIENTS = 10_000  # V13 refuses a new client id past this many rows
POLL = 0.05  # seconds between two looks at the fleet while waiting

Progress = Callable[[list["FleetClient"]], object]


@dataclass(frozen=True)
class ClientInfo:
    """Who a live client is, as it reports itself; `id` is one per process."""

    id: UUID
    name: str
    host: str
    pid: int
    version: str
    transport: str  # 'http' or 'database'
    domains: tuple[str, ...]
    heartbeat: float  # seconds between its reports


@dataclass(frozen=True)
class FleetClient(ClientInfo):
    """A client as the fleet knows it: when it started and was last heard from, what it applied, how far behind."""

    started_at: datetime
    last_seen_at: datetime
    applied: Mapping[str, int]  # domain -> activation sequence it applied (its callbacks done)
    stale: bool  # not heard from for STALE_AFTER heartbeats (by the database's clock)
    lag: Mapping[str, int]  # domain -> how many activations of it came after the one applied (0: current)
    reported_by: str  # the declared actor (a server reports its HTTP clients as their token), else db_user
    db_user: str

    def label(self) -> str:
        """How a person tells it apart: its name, host and pid."""
        return f"{self.name} ({self.host}, pid {self.pid})"

    def json(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "host": self.host, "pid": self.pid, "version": self.version,
                "transport": self.transport, "domains": list(self.domains), "heartbeat": self.heartbeat,
                "started_at": self.started_at.isoformat(), "last_seen_at": self.last_seen_at.isoformat(),
                "applied": dict(self.applied), "lag": dict(self.lag), "stale": self.stale,
                "reported_by": self.reported_by, "db_user": self.db_user}


def info_for(name: str | None = None, transport: str = "database", domains: Iterable[str] = DOMAINS,
             heartbeat: float = HEARTBEAT) -> ClientInfo:
    """This process as a client: a new id, this host and pid, this library's version; named host:pid by default."""
    from . import __version__

    host = socket.gethostname() or "unknown"
    pid = os.getpid()
    return ClientInfo(uuid.uuid4(), name or f"{host}:{pid}", host, pid, __version__, transport, tuple(domains),
                      float(heartbeat))


# -- writing -----------------------------------------------------------------------------------------------------


def report(conn: psycopg.Connection[Any], info: ClientInfo, applied: Mapping[str, int], *,
           actor: str | None = None) -> None:
    """Register or refresh a client with what it applied (domain -> activation sequence).

    `actor`: who reports it, when a server reports for its HTTP clients (the token's actor); by default the
    connection's walltrack.actor, else its database user. Only that reporter may report the id again.
    InvalidValue (422) names the argument V13 refuses; InvalidTransition (409) when the id is another
    reporter's or the fleet is full.
    """
    from psycopg.types.json import Jsonb

    _check_text(info)
    with translated():
        conn.execute("SELECT walltrack.fleet_report(%s::uuid, %s::text, %s::text, %s::int, %s::text, %s::text,"
                     " %s::text[], %s::real, %s::jsonb, %s::text)",
                     [info.id, info.name, info.host, info.pid, info.version, info.transport, list(info.domains),
                      info.heartbeat, Jsonb(dict(applied)), actor])


def leave(conn: psycopg.Connection[Any], client_id: UUID | str, *, actor: str | None = None) -> bool:
    """A client leaving the fleet: True when it was there. Only its reporter may (InvalidTransition)."""
    with translated():
        return db.scalar(conn, "SELECT walltrack.fleet_leave(%s, %s)", [_uuid(client_id), actor], bool)


# -- reading -----------------------------------------------------------------------------------------------------

_COLUMNS: LiteralString = (
    "f.id, f.name, f.host, f.pid, f.version, f.transport, f.domains, f.heartbeat_s, f.started_at, f.last_seen_at,"
    " f.applied, f.last_seen_at < statement_timestamp() - interval '1 second' * (f.heartbeat_s * 3) AS stale,"
    " f.reported_by, f.db_user"
)


def clients(conn: psycopg.Connection[Any]) -> list[FleetClient]:
    """Every client the fleet knows, stale ones too: by name, then host and pid."""
    return _select(conn, "true", [])


def current(conn: psycopg.Connection[Any], domains: Iterable[str] = DOMAINS) -> dict[str, int]:
    """Each domain's current activation sequence: the activation that made its live row live (0: none recorded)."""
    return {d: (seqs[-1] if seqs else 0) for d, seqs in _activations(conn, domains).items()}


def laggards(conn: psycopg.Connection[Any], domain: str, activation: int, *, stale: bool = False) -> list[FleetClient]:
    """The live (non-stale) clients following `domain` that have not reported applying `activation` (or a later
    one). With stale=True, the stale ones instead: not waited for, but not known to have applied it either."""
    _domain(domain)
    where: LiteralString = ("%s = ANY (f.domains) AND coalesce((f.applied ->> %s)::bigint, -1) < %s"
                            " AND (f.last_seen_at < statement_timestamp() - interval '1 second' * (f.heartbeat_s * 3))"
                            " = %s")
    return _select(conn, where, [domain, domain, activation, stale])


def live_count(conn: psycopg.Connection[Any], domain: str) -> int:
    """How many live (non-stale) clients follow `domain`."""
    _domain(domain)
    query = ("SELECT count(*) FROM walltrack.fleet_clients AS f WHERE %s = ANY (f.domains)"
             " AND f.last_seen_at >= statement_timestamp() - interval '1 second' * (f.heartbeat_s * 3)")
    with translated():
        return db.scalar(conn, query, [domain], int)


def wait_applied(source: psycopg.Connection[Any] | Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
                 domain: str, activation: int, timeout: float, poll: float = POLL, *,
                 progress: Progress | None = None) -> list[FleetClient]:
    """Wait until every live client following `domain` applied `activation`; the ones that did not in time.

    `source` is a connection, or something that lends one for each look (a pool's `connection`), so that
    no connection is held between looks. `progress(laggards)` hears the laggards at the first look and
    whenever they change. Looks at least once, whatever the timeout. An empty list: all applied.
    """
    import psycopg

    _domain(domain)
    deadline = time.monotonic() + max(0.0, timeout)
    seen: list[UUID] | None = None
    while True:
        if isinstance(source, psycopg.Connection):
            missing = laggards(source, domain, activation)
        else:
            with source() as conn:
                missing = laggards(conn, domain, activation)
        ids = [c.id for c in missing]
        if progress is not None and ids != seen:
            progress(missing)
        seen = ids
        left = deadline - time.monotonic()
        if not missing or left <= 0:
            return missing
        time.sleep(min(poll, left))


# -- what a live client uses to report ---------------------------------------------------------------------------


@dataclass
class Reporter:
    """What a live client reports, and when: at once after it applied something new, else every heartbeat.

    The client calls `applied(...)` after its callbacks ran, and, from one thread, `due()` then either
    `report(conn)` (on the database) or `body()` and, once the server took it, `sent()` (over HTTP).
    """

    info: ClientInfo
    _applied: dict[str, int] = field(default_factory=dict)
    _last: float | None = None  # time.monotonic() of the last report taken
    _changed: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def applied(self, activations: Mapping[str, int]) -> None:
        """What is applied now, callbacks done (domain -> activation sequence); a change makes a report due at once."""
        fresh = {d: int(a) for d, a in activations.items() if d in self.info.domains}
        with self._lock:
            if fresh != self._applied:
                self._applied, self._changed = fresh, True

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._changed or self._last is None or now - self._last >= self.info.heartbeat

    def body(self) -> dict[str, Any]:
        """The JSON body of POST /api/v1/fleet/report."""
        info = self.info
        with self._lock:
            applied = dict(self._applied)
        return {"id": str(info.id), "name": info.name, "host": info.host, "pid": info.pid, "version": info.version,
                "transport": info.transport, "domains": list(info.domains), "heartbeat": info.heartbeat,
                "applied": applied}

    def sent(self, body: Mapping[str, Any] | None = None, now: float | None = None) -> None:
        """The report (`body`, if given: what was sent) was taken; the next is due in a heartbeat."""
        with self._lock:
            if body is None or body.get("applied") == self._applied:
                self._changed = False
            self._last = time.monotonic() if now is None else now

    def report(self, conn: psycopg.Connection[Any], *, actor: str | None = None) -> None:
        """Report on the database now (DatabaseError, InvalidValue or InvalidTransition if not taken)."""
        body = self.body()
        report(conn, self.info, body["applied"], actor=actor)
        self.sent(body)


# -- inside ------------------------------------------------------------------------------------------------------


def _select(conn: psycopg.Connection[Any], where: LiteralString, params: Sequence[object]) -> list[FleetClient]:
    from psycopg import sql

    query = sql.SQL("SELECT {} FROM walltrack.fleet_clients AS f WHERE {} ORDER BY f.name, f.host, f.pid, f.id").format(
        sql.SQL(_COLUMNS), sql.SQL(where))
    with translated():
        # The log first: a client reporting in between then shows as current, never as further behind than it is.
        seqs = _activations(conn, DOMAINS)
        found = conn.execute(query, params).fetchall()
    return [_client(record, seqs) for record in found]


def _activations(conn: psycopg.Connection[Any], domains: Iterable[str]) -> dict[str, list[int]]:
    """Each domain's activation sequences, ascending."""
    wanted = [_domain(d) for d in domains]
    rows = conn.execute(
        "SELECT d, coalesce((SELECT array_agg(a.seq ORDER BY a.seq) FROM walltrack.config_activations AS a"
        " WHERE a.config_table = d || '_config'), '{}') FROM unnest(%s::text[]) AS d", [wanted]).fetchall()
    return {d: list(seqs) for d, seqs in rows}


def _client(record: tuple[Any, ...], seqs: Mapping[str, list[int]]) -> FleetClient:
    (id_, name, host, pid, version, transport, domains, heartbeat, started, seen, applied, stale, by, db_user) = record
    applied = {d: int(a) for d, a in (applied or {}).items()}
    # How many activations of the domain came after the one applied: 0 when current.
    lag = {d: len(seqs.get(d, [])) - bisect.bisect_right(seqs.get(d, []), a) for d, a in applied.items()}
    heartbeat = float(f"{heartbeat:.6g}")  # a real: 0.1, not 0.10000000149011612
    return FleetClient(id_, name, host, pid, version, transport, tuple(domains), heartbeat, started, seen, applied,
                       bool(stale), lag, by, db_user)


def _domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise UnknownDomain(domain, DOMAINS)
    return domain


def _uuid(value: UUID | str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError as exc:
        raise NotFound(TABLE, value, f"{str(value)[:60]!r} is not a client id (a UUID)") from exc


def _check_text(info: ClientInfo) -> None:
    """What cannot even be sent: a NUL in a text (PostgreSQL stores none), a pid wider than V13's column;
    V13 checks the rest."""
    if not isinstance(info.pid, int) or not 1 <= info.pid <= 2**31 - 1:
        raise InvalidValue(TABLE, [FieldError("pid", f"must be a positive integer of 32 bits, not {info.pid!r:.40}")])
    for name in ("name", "host", "version", "transport"):
        value = getattr(info, name)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidValue(TABLE, [FieldError(name, "must be printable: no control or bidi characters")])
    for domain in info.domains:
        if isinstance(domain, str) and "\x00" in domain:
            raise InvalidValue(TABLE, [FieldError("domains", "unknown domain")])


@contextmanager
def translated() -> Iterator[None]:
    """V13's refusals as the ConfigError family: 22023 names the argument (InvalidValue), WT001 a rule
    (InvalidTransition, with its hint); a lost connection is DatabaseUnavailable."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        error: ConfigError | None = None
        diag, state = exc.diag, exc.sqlstate or ""
        message = diag.message_primary or " ".join(str(exc).split())
        if state == "WT001":
            error = InvalidTransition(TABLE, message, diag.message_hint)
        elif state.startswith("22"):
            column = diag.column_name or "?"
            error = InvalidValue(TABLE, [FieldError(column, message.removeprefix(f"{column} "))])
        elif isinstance(exc, psycopg.OperationalError):
            error = DatabaseUnavailable(TABLE, " ".join(str(exc).split()))
        if error is None:
            raise
        raise error from exc
