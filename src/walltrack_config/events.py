"""Change events (V14): what happened to approvals, schedules, activations and the fleet, in commit order.

walltrack.change_events is written only by V14's functions and triggers; it is also the webhooks' outbox
(an insert makes one pending delivery per subscribed webhook, sent later by `webhooks.Sender`).

Also here, the plumbing the other V14 modules (changes, schedules, webhooks) share: `translated`, which turns
PostgreSQL's refusals into the ConfigError family once, and `find_id`, which picks a row by id or id prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString
from uuid import UUID

from . import db
from .domains import DOMAINS
from .errors import (
    AlreadyExists,
    AmbiguousRow,
    ConfigError,
    DatabaseUnavailable,
    FieldError,
    InvalidTransition,
    InvalidValue,
    NotFound,
    StaleVersion,
    UnknownDomain,
)

if TYPE_CHECKING:
    import psycopg

TABLE = "walltrack.change_events"
PREFIX_LENGTH = 6  # the shortest id prefix accepted for a request or a schedule, as for config rows
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Event:
    """One row of walltrack.change_events; `subject` is what it is about (a request, schedule or config row)."""

    seq: int
    kind: str
    domain: str | None
    subject: UUID | None
    actor: str | None
    db_user: str
    at: datetime
    payload: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "domain": self.domain,
                "subject": None if self.subject is None else str(self.subject), "actor": self.actor,
                "db_user": self.db_user, "at": self.at.isoformat(), "payload": self.payload}


def events(conn: psycopg.Connection[Any], *, after: int | None = None, kinds: Iterable[str] | None = None,
           domain: str | None = None, limit: int = 100) -> list[Event]:
    """Events in commit order (ascending seq): the first `limit` after `after`, or without it the last `limit`,
    so a reader starts at the newest and then follows with `after` = the last seq it saw."""
    from psycopg import sql

    wanted = None if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
    if domain is not None and domain not in DOMAINS:
        raise UnknownDomain(domain, DOMAINS)
    where = sql.SQL("(%s::bigint IS NULL OR seq > %s) AND (%s::text[] IS NULL OR kind = ANY (%s))"
                    " AND (%s::text IS NULL OR domain = %s)")
    newest_first = after is None  # the last `limit`: taken newest first, then put back in order
    query = sql.SQL("SELECT seq, kind, domain, subject, actor, db_user, at, payload FROM walltrack.change_events"
                    " WHERE {} ORDER BY seq {} LIMIT %s").format(where, sql.SQL("DESC" if newest_first else "ASC"))
    with translated(TABLE):
        found = conn.execute(query, [after, after, wanted, wanted, domain, domain, limit_of(limit)]).fetchall()
    made = [Event(*record) for record in found]
    return made[::-1] if newest_first else made


def note_stale(conn: psycopg.Connection[Any]) -> int:
    """Record a client_stale event for each fleet client newly stale (once per client until it reports again)."""
    with translated("walltrack.fleet_clients"):
        return db.scalar(conn, "SELECT walltrack.fleet_note_stale()", None, int)


# -- shared by the V14 modules ------------------------------------------------------------------------------------


def limit_of(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidValue(TABLE, [FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")])
    return limit


def one_of(table: str, field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    """`value` when it is None or one of `allowed`; InvalidValue naming the choices otherwise."""
    if value is not None and value not in allowed:
        raise InvalidValue(table, [FieldError(field, f"one of {', '.join(allowed)}, not {str(value)[:40]!r}")])
    return value


def find_id(conn: psycopg.Connection[Any], table: LiteralString, ref: UUID | str, what: str) -> UUID:
    """The id of the row of `table` (a request or a schedule) that `ref` names: its id, or a unique prefix of
    PREFIX_LENGTH+ hex characters. NotFound, or AmbiguousRow listing the candidates."""
    from psycopg import sql

    text = str(ref).strip().lower()
    exact: UUID | None = ref if isinstance(ref, UUID) else None
    if exact is None:
        try:
            exact = UUID(text)
        except ValueError:
            if len(text) < PREFIX_LENGTH or any(ch not in "0123456789abcdef-" for ch in text):
                raise NotFound(table, ref, f"no {what} is {str(ref)[:60]!r} (give its id, or an id prefix of "
                                           f"{PREFIX_LENGTH}+ characters)") from None
    where = sql.SQL("id = %s") if exact is not None else sql.SQL("id::text LIKE %s")
    query = sql.SQL("SELECT id, domain, status FROM {} WHERE {} ORDER BY created_at, id LIMIT 10").format(
        sql.SQL(table), where)
    with translated(table):
        found = conn.execute(query, [exact if exact is not None else text + "%"]).fetchall()
    if len(found) == 1:
        row_id: UUID = found[0][0]
        return row_id
    if not found:
        raise NotFound(table, ref, f"no {what} is {str(ref)[:60]!r}")
    raise AmbiguousRow(table, text, [f"{id_} {domain} {status}" for id_, domain, status in found])


@contextmanager
def translated(table: str, *, domain: str | None = None, name: str | None = None) -> Iterator[None]:
    """V14's refusals as the ConfigError family, the original as the cause. With `domain`, as lifecycle reads them
    (so WT005 is ApprovalRequired there too); else WT001 a rule (InvalidTransition, with its hint), WT002 a stale
    version, WT003 not found, 22xxx a bad argument naming its column, 23505 `name` taken (AlreadyExists)."""
    import psycopg

    from . import lifecycle

    try:
        yield
    except psycopg.Error as exc:
        if domain is not None and (known := lifecycle.translate(domain, exc)) is not exc:
            raise known from exc
        diag, state = exc.diag, exc.sqlstate or ""
        message = diag.message_primary or " ".join(str(exc).split())
        error: ConfigError | None = None
        if state == "WT001":
            error = InvalidTransition(table, message, diag.message_hint)
        elif state == "WT002":
            error = StaleVersion(table, message)
        elif state == "WT003":
            error = NotFound(table, message=message)
        elif state == "23505" and name is not None:
            error = AlreadyExists(table.rsplit(".", 1)[-1].removesuffix("s"), name)
        elif state.startswith("22"):
            column = diag.column_name or "?"
            error = InvalidValue(table, [FieldError(column, message.removeprefix(f"{column} "))])
        elif isinstance(exc, psycopg.OperationalError):
            error = DatabaseUnavailable(table, " ".join(str(exc).split()))
        if error is None:
            raise
        raise error from exc
