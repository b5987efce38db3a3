"""Approvals (V14): each domain's policy (admin), change requests (editor), approve and reject (operator).

Every write runs as the caller: the requester, the approver and the policy's author are the authenticated
principal, never something the client sends. The database enforces the rules whatever the front door: the
requester cannot approve their own request (409), an edit of the draft voids its requests, and a draft of a
domain whose policy requires approvals goes live only with them (409 naming what is missing).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from ... import changes, lifecycle
from ...domains import DomainName
from ..deps import Admin, Connection, Editor, Operator, Reader
from ..schemas import ApproveIn, ChangeRequestOut, PolicyIn, PolicyOut, RejectIn, RequestIn, RequestStatus
from ._shared import ROW_NOT_FOUND, DomainPath, RefPath, Responses, domain_of, if_match

router = APIRouter(tags=["approvals"])

RequestPath = Annotated[str, Path(min_length=6, max_length=36, pattern=r"^[0-9A-Fa-f-]+$",
                                  description="A request's id, or a unique prefix of it (6+ characters).")]

REQUEST_ERRORS: Responses = {
    404: {"description": "No such request (or domain)."},
    409: {"description": "A rule refused it: the request is no longer pending, the requester cannot approve "
                         "their own request, an id prefix names several requests."},
    422: {"description": "A value the rules refuse, naming the field."},
}


@router.get("/policies", response_model=list[PolicyOut])
def list_policies(who: Reader, conn: Connection) -> list[dict[str, Any]]:
    """Each domain's approval policy: how many approvals a draft needs before it goes live."""
    return [p.json() for p in changes.policies(conn)]


@router.put("/policies/{domain}", response_model=PolicyOut, responses={
    **ROW_NOT_FOUND, 422: {"description": "approvals is not 0 to 5."}})
def set_policy(domain: DomainPath, body: PolicyIn, who: Admin, conn: Connection) -> dict[str, Any]:
    """Set how many approvals (0 to 5) a draft of the domain needs before it goes live (a policy_changed event)."""
    policy = changes.set_policy(conn, domain_of(domain), body.approvals, actor=who.actor, reason=body.reason)
    return policy.json()


@router.post("/config/{domain}/drafts/{ref}/requests", response_model=ChangeRequestOut, status_code=201,
             responses={**ROW_NOT_FOUND,
                        409: {"description": "Not a draft, or a request for it is pending already."},
                        412: {"description": "The draft is no longer at the version you sent."},
                        422: {"description": "A value the rules refuse, naming the field."},
                        428: {"description": "The version you reviewed is required (If-Match)."}})
def create_request(request: Request, response: Response, domain: DomainPath, ref: RefPath, body: RequestIn,
                   who: Editor, conn: Connection) -> dict[str, Any]:
    """Ask for the draft, at the version you reviewed, to go live: operators other than you approve it."""
    table = lifecycle.table_of(domain_of(domain))
    version = if_match(request, table, "requesting approval", given=body.expected_version)
    assert version is not None
    draft = lifecycle.resolve(conn, domain, ref)
    made = changes.request(conn, domain, draft.id, version, actor=who.actor, reason=body.reason)
    response.headers["Location"] = str(request.url_for("get_request", request_id=str(made.id)))
    return made.json()


@router.get("/requests", response_model=list[ChangeRequestOut])
def list_requests(who: Reader, conn: Connection, domain: DomainName | None = None,
                  status: Annotated[RequestStatus | Literal["all"], Query(
                      description="Only requests with this status; all: every one.")] = "pending",
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Change requests, newest first: the pending ones unless asked otherwise."""
    chosen = None if status == "all" else status
    return [r.json() for r in changes.requests(conn, domain=domain, status=chosen, limit=limit)]


@router.get("/requests/{request_id}", response_model=ChangeRequestOut, responses=REQUEST_ERRORS)
def get_request(request_id: RequestPath, who: Reader, conn: Connection) -> dict[str, Any]:
    """One change request, with its decisions and what it still needs."""
    return changes.get(conn, request_id).json()


@router.post("/requests/{request_id}/approve", response_model=ChangeRequestOut, responses=REQUEST_ERRORS)
def approve(request_id: RequestPath, who: Operator, conn: Connection,
            body: ApproveIn | None = None) -> dict[str, Any]:
    """Approve as yourself (not the requester); approving twice counts once."""
    return changes.approve(conn, request_id, actor=who.actor, comment=body.comment if body else None).json()


@router.post("/requests/{request_id}/reject", response_model=ChangeRequestOut, responses=REQUEST_ERRORS)
def reject(request_id: RequestPath, body: RejectIn, who: Operator, conn: Connection) -> dict[str, Any]:
    """Reject, with a comment: the request is closed (the draft stays; a new request may follow)."""
    return changes.reject(conn, request_id, actor=who.actor, comment=body.comment).json()
