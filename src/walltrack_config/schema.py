"""Which migrations a database has, read from its catalog, so a command can say what is missing.

The catalog is the truth whoever migrated (the runner, or psql -1 -f): each version leaves an object
behind that the one before it did not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SchemaOutdated, UnexpectedReply

if TYPE_CHECKING:
    import psycopg

#: the schema version this release's commands need
NEEDED = 11
#: what users, tokens and the server need (V12: principals)
PRINCIPALS = 12
#: what the fleet needs, and so the server (V13: live clients and what each applied)
FLEET = 13
#: what approvals, schedules, webhooks and change events need (V14: change management)
CHANGES = 14

_MARKERS = (
    (8, "to_regclass('walltrack.config_audit_log')"),
    (9, "to_regprocedure('walltrack.guard_config_row()')"),
    (10, "to_regprocedure('walltrack.notify_config_live()')"),
    (11, "to_regclass('walltrack.config_activations')"),
    (12, "to_regclass('walltrack_auth.users')"),
    (13, "to_regclass('walltrack.fleet_clients')"),
    (14, "to_regclass('walltrack.change_events')"),
)


def version(conn: psycopg.Connection) -> int:
    """The highest version whose marker, and every marker below it, is present (0: not migrated)."""
    from psycopg import sql

    query = sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("{} IS NOT NULL").format(sql.SQL(marker)) for _, marker in _MARKERS))
    present = conn.execute(query).fetchone()
    if present is None:  # a SELECT without FROM always returns its one row
        raise UnexpectedReply(query.as_string(conn), "a row")
    current = 0
    for (number, _), here in zip(_MARKERS, present, strict=True):
        if not here:
            break
        current = number
    return current


def require(conn: psycopg.Connection, needed: int = NEEDED) -> None:
    """SchemaOutdated unless the database is at `needed` or above."""
    current = version(conn)
    if current < needed:
        raise SchemaOutdated(current, needed)
