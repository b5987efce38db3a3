"""Approvals (V14): a domain's policy says how many people other than the requester must approve a draft before
it goes live; a change request binds to the draft's version and settings hash.

The rules live in PostgreSQL: a trigger on the config tables refuses draft → active without an approved request
(WT005, ApprovalRequired), whichever path activates, and any edit of the draft voids its requests. Here: the
typed door to V14's functions, and the requests as a person reviews them (who approved, how many are missing,
whether the draft is still what was requested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from . import db
from .domains import DOMAINS, Domain
from .errors import FieldError, InvalidValue, UnexpectedReply, UnknownDomain
from .events import find_id, limit_of, one_of, translated

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

POLICIES, REQUESTS = "walltrack.approval_policies", "walltrack.change_requests"
STATUSES = ("pending", "rejected", "applied", "void")
MAX_APPROVALS = 5


@dataclass(frozen=True)
class Policy:
    domain: str
    approvals: int  # approvals required before a draft of the domain goes live (0: none)
    updated_by: str | None
    updated_at: datetime | None

    def json(self) -> dict[str, Any]:
        return {"domain": self.domain, "approvals": self.approvals, "updated_by": self.updated_by,
                "updated_at": None if self.updated_at is None else self.updated_at.isoformat()}


@dataclass(frozen=True)
class Decision:
    approver: str
    decision: str  # 'approve' or 'reject'
    comment: str | None
    at: datetime
    db_user: str

    def json(self) -> dict[str, Any]:
        return {"approver": self.approver, "decision": self.decision, "comment": self.comment,
                "at": self.at.isoformat(), "db_user": self.db_user}


@dataclass(frozen=True)
class ChangeRequest:
    id: UUID
    domain: str
    config_id: UUID
    version: int
    settings_hash: str
    requested_by: str
    reason: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decisions: tuple[Decision, ...]
    required: int  # the domain's policy now
    draft_name: str | None  # the row's name now, None if gone
    current: bool  # the row is still a draft at this version and settings hash

    @property
    def approved_by(self) -> tuple[str, ...]:
        return tuple(d.approver for d in self.decisions if d.decision == "approve")

    @property
    def missing(self) -> int:
        """Approvals still needed for the policy as it is now."""
        return max(0, self.required - len(self.approved_by))

    def json(self) -> dict[str, Any]:
        return {"id": str(self.id), "domain": self.domain, "config_id": str(self.config_id), "version": self.version,
                "settings_hash": self.settings_hash, "requested_by": self.requested_by, "reason": self.reason,
                "status": self.status, "created_at": self.created_at.isoformat(),
                "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
                "decisions": [d.json() for d in self.decisions], "required": self.required,
                "approved_by": list(self.approved_by), "missing": self.missing, "draft_name": self.draft_name,
                "current": self.current}


# -- policies ----------------------------------------------------------------------------------------------------


def policies(conn: psycopg.Connection[Any]) -> list[Policy]:
    """Every domain's policy, in the domains' order."""
    query = "SELECT domain, approvals_required, updated_by, updated_at FROM walltrack.approval_policies"
    with translated(POLICIES):
        found = {record[0]: Policy(*record) for record in conn.execute(query)}
    return [found[d] for d in DOMAINS if d in found]


def set_policy(conn: psycopg.Connection[Any], domain: str, approvals: int, *, actor: str,
               reason: str | None = None) -> Policy:
    """Require `approvals` (0..5) approvals before a draft of `domain` goes live (app role admin: the front doors
    check; the function is the owner's)."""
    _domain(domain)
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 0 <= approvals <= MAX_APPROVALS:
        raise InvalidValue(POLICIES, [FieldError("approvals", f"must be a whole number from 0 to {MAX_APPROVALS}")])
    with translated(POLICIES, domain=domain), conn.transaction():
        conn.execute("SELECT walltrack.set_approval_policy(%s, %s, %s, %s)", [domain, approvals, actor, reason])
    return next(p for p in policies(conn) if p.domain == domain)


# -- requests ----------------------------------------------------------------------------------------------------


def request(conn: psycopg.Connection[Any], domain: str, draft: UUID, expected_version: int, *, actor: str,
            reason: str) -> ChangeRequest:
    """Ask for approval of the draft at the version the requester reviewed (WT002: edited since)."""
    _domain(domain)
    with translated(REQUESTS, domain=domain), conn.transaction():
        made = db.scalar(conn, "SELECT walltrack.request_activation(%s, %s, %s, %s, %s)",
                         [domain, draft, expected_version, actor, reason], UUID)
    return get(conn, made)


def approve(conn: psycopg.Connection[Any], request_id: UUID | str, *, actor: str,
            comment: str | None = None) -> ChangeRequest:
    """Approve as `actor`; the requester may not (InvalidTransition); approving twice changes nothing."""
    found = get(conn, request_id)
    with translated(REQUESTS, domain=found.domain), conn.transaction():
        conn.execute("SELECT walltrack.approve_request(%s, %s, %s)", [found.id, actor, comment])
    return get(conn, found.id)


def reject(conn: psycopg.Connection[Any], request_id: UUID | str, *, actor: str, comment: str) -> ChangeRequest:
    """Reject (a comment says why): the request is closed; a new one is needed."""
    found = get(conn, request_id)
    with translated(REQUESTS, domain=found.domain), conn.transaction():
        conn.execute("SELECT walltrack.reject_request(%s, %s, %s)", [found.id, actor, comment])
    return get(conn, found.id)


def get(conn: psycopg.Connection[Any], request_id: UUID | str) -> ChangeRequest:
    """A request by id or unique id prefix (6+ characters): NotFound or AmbiguousRow otherwise."""
    from psycopg import sql

    row_id = find_id(conn, REQUESTS, request_id, "change request")
    found = _select(conn, sql.SQL("r.id = %s"), [row_id], 1)
    if not found:  # gone between the two looks: requests are never deleted, so only a concurrent undo
        raise UnexpectedReply("walltrack.change_requests", f"request {row_id}")
    return found[0]


def requests(conn: psycopg.Connection[Any], *, domain: str | None = None, status: str | None = "pending",
             limit: int = 100) -> list[ChangeRequest]:
    """Requests newest first, of one domain and status (None: all)."""
    from psycopg import sql

    if domain is not None:
        _domain(domain)
    one_of(REQUESTS, "status", status, STATUSES)
    where = sql.SQL("(%s::text IS NULL OR r.domain = %s) AND (%s::text IS NULL OR r.status = %s)")
    return _select(conn, where, [domain, domain, status, status], limit_of(limit))


def break_glass(conn: psycopg.Connection[Any], domain: str, draft: UUID, expected_version: int, *, actor: str,
                reason: str) -> UUID:
    """Activate without approval, loudly (a grant row, a break_glass event, the reason prefixed BREAK GLASS).

    App role admin only (the front doors check); the function is the owner's, granted to the server's role."""
    _domain(domain)
    with translated(REQUESTS, domain=domain), conn.transaction():
        return db.scalar(conn, "SELECT walltrack.break_glass_activate(%s, %s, %s, %s, %s)",
                         [domain, draft, expected_version, actor, reason], UUID)


# -- inside ------------------------------------------------------------------------------------------------------


def config_join(outer: str) -> sql.Composed:
    """LEFT JOIN LATERAL (...) AS c: the config row that `outer` (an alias of a V14 table with domain and
    config_id) is about, whatever its domain: c.name, c.status, c.version, c.hash (a draft's settings hash)."""
    from psycopg import sql

    branches = [
        sql.SQL("SELECT t.name, t.status::text AS status, t.version, CASE WHEN t.status = 'draft'"
                " THEN walltrack.config_settings_hash(t.tableoid::regclass, t.id) END AS hash"
                " FROM walltrack.{table} AS t WHERE {outer}.domain = {domain} AND t.id = {outer}.config_id").format(
            table=sql.Identifier(d.table), outer=sql.Identifier(outer), domain=sql.Literal(d.value))
        for d in Domain
    ]
    return sql.SQL("LEFT JOIN LATERAL ({}) AS c ON true").format(sql.SQL(" UNION ALL ").join(branches))


def _select(conn: psycopg.Connection[Any], where: sql.Composable, params: Sequence[object],
            limit: int) -> list[ChangeRequest]:
    from psycopg import sql

    query = sql.SQL(
        "SELECT r.id, r.domain, r.config_id, r.version, r.settings_hash, r.requested_by, r.reason, r.status,"
        " r.created_at, r.decided_at, coalesce(p.approvals_required, 0), c.name,"
        " coalesce(c.status = 'draft' AND c.version = r.version AND c.hash = r.settings_hash, false)"
        " FROM walltrack.change_requests AS r LEFT JOIN walltrack.approval_policies AS p ON p.domain = r.domain"
        " {join} WHERE {where} ORDER BY r.created_at DESC, r.id LIMIT %s").format(
        join=config_join("r"), where=where)
    decisions = ("SELECT request_id, approver, decision, comment, at, db_user FROM walltrack.change_approvals"
                 " WHERE request_id = ANY (%s) ORDER BY at, approver")
    with translated(REQUESTS):
        found = conn.execute(query, [*params, limit]).fetchall()
        made: dict[UUID, list[Decision]] = {record[0]: [] for record in found}
        for request_id, *decision in conn.execute(decisions, [list(made)]):
            made[request_id].append(Decision(*decision))
    return [_request(record, tuple(made[record[0]])) for record in found]


def _request(record: tuple[Any, ...], decisions: tuple[Decision, ...]) -> ChangeRequest:
    (id_, domain, config_id, version, settings_hash, requested_by, reason, status, created_at, decided_at,
     required, draft_name, current) = record
    return ChangeRequest(id_, domain, config_id, version, settings_hash, requested_by, reason, status, created_at,
                         decided_at, decisions, required, draft_name, current)


def _domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise UnknownDomain(domain, DOMAINS)
    return domain
