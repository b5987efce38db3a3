"""Scheduled activation (V14): a draft goes live at a time chosen now, at the version reviewed now.

`run_due` runs the schedules whose time has come through walltrack.run_due_schedules, which claims each one
FOR UPDATE SKIP LOCKED, so any number of servers and cron runners (`walltrack-config schedule run`) run it once.
A schedule older than the grace is missed, not run late; one whose activation is refused (the draft edited
since, approvals missing) fails with the reason. Editing or discarding the draft cancels its schedules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from . import db
from .changes import config_join
from .domains import DOMAINS
from .errors import FieldError, InvalidValue, UnexpectedReply, UnknownDomain
from .events import find_id, limit_of, one_of, translated

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

TABLE = "walltrack.activation_schedules"
STATUSES = ("pending", "done", "failed", "missed", "cancelled")
GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class Schedule:
    id: UUID
    domain: str
    config_id: UUID
    version: int
    run_at: datetime
    created_by: str
    reason: str
    status: str
    outcome: str | None  # why it failed, was missed or cancelled; what it did when done
    created_at: datetime
    finished_at: datetime | None
    draft_name: str | None  # the row's name now, None if gone

    def json(self) -> dict[str, Any]:
        return {"id": str(self.id), "domain": self.domain, "config_id": str(self.config_id), "version": self.version,
                "run_at": self.run_at.isoformat(), "created_by": self.created_by, "reason": self.reason,
                "status": self.status, "outcome": self.outcome, "created_at": self.created_at.isoformat(),
                "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
                "draft_name": self.draft_name}


@dataclass(frozen=True)
class Ran:
    """What run_due did with one schedule: done, failed or missed."""

    id: UUID
    domain: str
    status: str
    outcome: str | None

    def json(self) -> dict[str, Any]:
        return {"id": str(self.id), "domain": self.domain, "status": self.status, "outcome": self.outcome}


def schedule(conn: psycopg.Connection[Any], domain: str, draft: UUID, expected_version: int, run_at: datetime, *,
             actor: str, reason: str) -> Schedule:
    """Activate the draft at `run_at` (an aware datetime, in the next 366 days) at the version reviewed now."""
    if domain not in DOMAINS:
        raise UnknownDomain(domain, DOMAINS)
    if not isinstance(run_at, datetime) or run_at.utcoffset() is None:
        # A naive time would be read in the session's time zone: a different instant on another machine.
        raise InvalidValue(TABLE, [FieldError("run_at", "must be a date and time with its time zone (UTC)")])
    with translated(TABLE, domain=domain), conn.transaction():
        made = db.scalar(conn, "SELECT walltrack.schedule_activation(%s, %s, %s, %s, %s, %s)",
                         [domain, draft, expected_version, run_at, actor, reason], UUID)
    return get(conn, made)


def cancel(conn: psycopg.Connection[Any], schedule_id: UUID | str, *, actor: str,
           reason: str | None = None) -> Schedule:
    """Cancel a pending schedule (InvalidTransition once it ran, failed, was missed or cancelled)."""
    found = get(conn, schedule_id)
    with translated(TABLE, domain=found.domain), conn.transaction():
        conn.execute("SELECT walltrack.cancel_schedule(%s, %s, %s)", [found.id, actor, reason])
    return get(conn, found.id)


def schedules(conn: psycopg.Connection[Any], *, domain: str | None = None, status: str | None = "pending",
              limit: int = 100) -> list[Schedule]:
    """Pending schedules first, soonest first; then the others, latest first."""
    from psycopg import sql

    if domain is not None and domain not in DOMAINS:
        raise UnknownDomain(domain, DOMAINS)
    one_of(TABLE, "status", status, STATUSES)
    where = sql.SQL("(%s::text IS NULL OR s.domain = %s) AND (%s::text IS NULL OR s.status = %s)")
    return _select(conn, where, [domain, domain, status, status], limit_of(limit))


def get(conn: psycopg.Connection[Any], schedule_id: UUID | str) -> Schedule:
    """A schedule by id or unique id prefix (6+ characters): NotFound or AmbiguousRow otherwise."""
    from psycopg import sql

    row_id = find_id(conn, TABLE, schedule_id, "schedule")
    found = _select(conn, sql.SQL("s.id = %s"), [row_id], 1)
    if not found:  # schedules are never deleted: only an undo of V14 in between
        raise UnexpectedReply(TABLE, f"schedule {row_id}")
    return found[0]


def run_due(conn: psycopg.Connection[Any], *, grace: timedelta = GRACE, runner: str | None = None) -> list[Ran]:
    """Run every schedule whose time has come (each once, whoever else runs them): what became of each."""
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        raise InvalidValue(TABLE, [FieldError("grace", "must be a duration of 0 or more")])
    query = "SELECT id, domain, status, outcome FROM walltrack.run_due_schedules(%s, %s)"
    with translated(TABLE), conn.transaction():
        return [Ran(*record) for record in conn.execute(query, [grace, runner])]


def next_due(conn: psycopg.Connection[Any]) -> datetime | None:
    """When the next pending schedule is due, so a runner can sleep until then; None: nothing pending."""
    with translated(TABLE):
        return db.scalar(conn, "SELECT min(run_at) FROM walltrack.activation_schedules WHERE status = 'pending'",
                         None, datetime, nullable=True)


def _select(conn: psycopg.Connection[Any], where: sql.Composable, params: Sequence[object],
            limit: int) -> list[Schedule]:
    from psycopg import sql

    query = sql.SQL(
        "SELECT s.id, s.domain, s.config_id, s.version, s.run_at, s.created_by, s.reason, s.status, s.outcome,"
        " s.created_at, s.finished_at, c.name FROM walltrack.activation_schedules AS s {join} WHERE {where}"
        " ORDER BY s.status <> 'pending', CASE WHEN s.status = 'pending' THEN s.run_at END,"
        " s.run_at DESC, s.id LIMIT %s").format(join=config_join("s"), where=where)
    with translated(TABLE):
        return [Schedule(*record) for record in conn.execute(query, [*params, limit])]
