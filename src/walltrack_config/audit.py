"""The audit trail: what changed in a domain, who changed it, when and why."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from .domains import DOMAINS, AuditAction
from .lifecycle import model_of, translated

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class AuditEntry:
    """One row of walltrack.config_audit_log."""

    id: int
    config_table: str
    config_id: UUID
    action: AuditAction
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    changed_fields: list[str] | None
    reason: str | None
    performed_by: str
    performed_at: datetime
    source_ip: str | None
    user_agent: str | None
    db_user: str | None  # the session's database user (V11); performed_by is the declared actor
    db_client_addr: str | None  # where the database saw the session come from (V11); source_ip is declared

    def __post_init__(self) -> None:
        # The database hands the action over as text; an action the trigger cannot write is refused here.
        object.__setattr__(self, "action", AuditAction(self.action))

    def columns(self) -> dict[str, object]:
        """Every column under its own name (JSON-ready values)."""
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        return values | {"config_id": str(self.config_id), "action": self.action.value,
                         "performed_at": self.performed_at.isoformat()}


def history(conn: psycopg.Connection, domain: str, limit: int = 50, since: datetime | None = None) -> list[AuditEntry]:
    """A domain's audit entries, newest first (by id: V11 writes them in commit order, under one lock)."""
    return entries(conn, domain=domain, since=since, limit=limit)


def entries(conn: psycopg.Connection, *, domain: str | None = None, actor: str | None = None,
            since: datetime | None = None, until: datetime | None = None, limit: int = 50,
            before: int | None = None) -> list[AuditEntry]:
    """Audit entries of every domain (or one), newest first, filtered; `before` an id: the page after it.

    Paging by id, not by offset: a page stays the same while new entries arrive on top.
    """
    from psycopg.rows import class_row

    tables = [model_of(domain).table] if domain is not None else [model_of(d).table for d in DOMAINS]
    query = """SELECT id, config_table, config_id, action, old_values, new_values, changed_fields, reason,
                      performed_by, performed_at, source_ip, user_agent, db_user,
                      host(db_client_addr) AS db_client_addr
               FROM walltrack.config_audit_log
               WHERE config_table = ANY(%s)
                 AND (%s::text IS NULL OR performed_by = %s)
                 AND performed_at >= coalesce(%s, '-infinity'::timestamptz)
                 AND performed_at < coalesce(%s, 'infinity'::timestamptz)
                 AND id < coalesce(%s, 9223372036854775807)
               ORDER BY id DESC LIMIT %s"""
    # translated() names one table in what it raises; for a query over every domain, the first stands in.
    with translated(domain or DOMAINS[0]), conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        return cur.execute(query, [tables, actor, actor, since, until, before, limit]).fetchall()


def snapshot(conn: psycopg.Connection, domain: str, row_id: UUID, version: int) -> dict[str, Any] | None:
    """A row as it was at one version (every column), from the audit trail; None if it never was."""
    table = model_of(domain).table
    query = """SELECT new_values FROM walltrack.config_audit_log
               WHERE config_table = %s AND config_id = %s AND (new_values ->> 'version')::int = %s
               ORDER BY id DESC LIMIT 1"""
    with translated(domain):
        found = conn.execute(query, [table, row_id, version]).fetchone()
    if found is None:
        return None
    values: dict[str, Any] = found[0]  # new_values: the row's columns, as JSON
    return values
