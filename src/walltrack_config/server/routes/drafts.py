"""Writes: drafts (editor), activation (now or scheduled), rollback and restore (operator), break-glass
activation (admin). Each runs as the caller: the audit trail's performed_by is the authenticated principal,
never something the client sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import changes, lifecycle, schedules
from ...domains import Role
from ...errors import FieldError, InvalidValue, StaleVersion
from ...lifecycle import ConfigRow
from ...principals import Principal
from ..deps import Connection, Editor, Operator, require, server
from ..schemas import (
    ActivateIn,
    DiscardIn,
    DraftIn,
    DraftPatchIn,
    GoneLiveOut,
    RestoreIn,
    RollbackIn,
    RowOut,
    ScheduleOut,
)
from . import fleet as fleet_routes
from ._shared import ROW_NOT_FOUND, DomainPath, RefPath, Responses, domain_of, if_match, live, row_json, with_etag
from .fleet import WaitApplied

if TYPE_CHECKING:
    import psycopg

router = APIRouter(tags=["drafts"])

WRITE_ERRORS: Responses = {
    **ROW_NOT_FOUND,
    409: {"description": "A lifecycle rule or a concurrent change refused it."},
    412: {"description": "The row is no longer at the version you sent (If-Match / expected_version)."},
    422: {"description": "A value the rules refuse, naming the field and the rule."},
    428: {"description": "The version you reviewed is required (If-Match)."},
}


def _created(request: Request, response: Response, row: ConfigRow) -> dict[str, Any]:
    response.status_code = 201
    response.headers["Location"] = str(request.url_for("get_row", domain=row.domain, ref=str(row.id)))
    with_etag(response, row)
    return row_json(row)


@router.post("/config/{domain}/drafts", response_model=RowOut, status_code=201, responses=WRITE_ERRORS)
def create_draft(request: Request, response: Response, domain: DomainPath, body: DraftIn, who: Editor,
                 conn: Connection) -> dict[str, Any]:
    """A new draft, copied from the active row (default), the default row, or any row."""
    domain_of(domain)
    source = body.from_ if body.from_ in ("active", "default") else lifecycle.resolve(conn, domain, body.from_).id
    row = lifecycle.clone(conn, domain, source, actor=who.actor, reason=body.reason, name=body.name)
    return _created(request, response, row)


@router.patch("/config/{domain}/drafts/{ref}", response_model=RowOut, responses=WRITE_ERRORS)
def edit_draft(request: Request, response: Response, domain: DomainPath, ref: RefPath, body: DraftPatchIn,
               who: Editor, conn: Connection) -> dict[str, Any]:
    """Change a draft's settings, name or description; If-Match: the version you read (428 without, 412 stale)."""
    table = lifecycle.table_of(domain_of(domain))
    version = if_match(request, table, "editing a draft")
    assert version is not None
    changes: dict[str, object] = dict(body.settings)
    changes.update({k: v for k in ("name", "description") if (v := getattr(body, k)) is not None})
    if not changes:
        raise InvalidValue(table, [FieldError("settings", "nothing to change: give settings, name or description")])
    draft = lifecycle.resolve(conn, domain, ref)
    row = lifecycle.edit(conn, domain, draft.id, version, changes, actor=who.actor, reason=body.reason)
    with_etag(response, row)
    return row_json(row)


@router.delete("/config/{domain}/drafts/{ref}", status_code=204, responses=WRITE_ERRORS)
def discard_draft(request: Request, domain: DomainPath, ref: RefPath, who: Editor, conn: Connection,
                  body: DiscardIn | None = None) -> Response:
    """Delete a draft (its last state stays in the history); with If-Match, only at that version."""
    table = lifecycle.table_of(domain_of(domain))
    expected = if_match(request, table, "discarding a draft", required=False)
    with conn.transaction():
        lifecycle.lock_writes(conn)  # the version checked is the version deleted
        draft = lifecycle.resolve(conn, domain, ref)
        if expected is not None and draft.version != expected:
            raise StaleVersion(table, f"draft changed since you reviewed it (v{expected} → v{draft.version}); "
                                      "review again", draft.id, expected)
        lifecycle.discard(conn, domain, draft.id, actor=who.actor, reason=body.reason if body else None)
    return Response(status_code=204)


ACTIVATE_ANSWERS: Responses = {
    **WRITE_ERRORS,
    202: {"model": ScheduleOut, "description": "With `at`: the activation is scheduled (this is the schedule)."},
    403: {"description": "Your role may not: activating needs operator, break glass needs admin."},
    409: {"description": "A lifecycle rule or a concurrent change refused it; or the domain's policy requires "
                         "approvals the draft does not have (ApprovalRequired, naming what is missing)."},
}


@router.post("/config/{domain}/drafts/{ref}/activate", response_model=GoneLiveOut, response_model_exclude_unset=True,
             responses=ACTIVATE_ANSWERS)
async def activate(request: Request, response: Response, domain: DomainPath, ref: RefPath, body: ActivateIn,
                   who: Operator, wait_applied: WaitApplied = None) -> Any:
    """Make the draft live at the version you reviewed (expected_version or If-Match); the active row is archived.

    If the domain's policy requires approvals, the draft needs an approved request at this version (409 names
    what is missing). With `at`, it is scheduled instead (202, the schedule): it goes live then, approvals
    checked at that time. With `break_glass` (admin only, a reason required) it goes live now without the
    approvals, loudly recorded. With ?wait_applied=SECONDS, the answer then waits for every live client to apply
    it (see `applied`)."""
    if body.break_glass:
        require(who, Role.ADMIN, "break-glass activation")
    table = lifecycle.table_of(domain_of(domain))
    if body.at is not None or body.break_glass:
        _check_special(table, body, wait_applied)
    if body.at is not None:
        return await run_in_threadpool(_schedule, request, domain, ref, body, who)

    def write(conn: psycopg.Connection[Any]) -> ConfigRow:
        version = if_match(request, table, "activating a draft", given=body.expected_version)
        assert version is not None
        draft = lifecycle.resolve(conn, domain, ref)
        if body.break_glass:
            assert body.reason is not None  # _check_special
            made = changes.break_glass(conn, domain, draft.id, version, actor=who.actor, reason=body.reason)
            return lifecycle.get(conn, domain, made)
        return lifecycle.activate(conn, domain, draft.id, expected_version=version, actor=who.actor,
                                  reason=body.reason)

    return await _go_live(request, response, write, wait_applied)


def _check_special(table: str, body: ActivateIn, wait_applied: float | None) -> None:
    """A schedule and a break-glass activation each need a reason, and go together with neither each other nor
    (a schedule) a wait for the fleet."""
    problems: list[FieldError] = []
    if body.at is not None and body.break_glass:
        problems.append(FieldError("break_glass", "schedule (at) or break glass, not both"))
    if not (body.reason or "").strip():
        what = "a break-glass activation" if body.break_glass else "a scheduled activation"
        problems.append(FieldError("reason", f"{what} needs a reason"))
    if body.at is not None:
        try:
            body.at.astimezone(UTC)
        except (OverflowError, ValueError):
            problems.append(FieldError("at", "not a time that can be scheduled: give one in the next 366 days"))
    if body.at is not None and wait_applied is not None:
        problems.append(FieldError("wait_applied", "a scheduled activation has nothing to wait for yet; look at "
                                                   "the fleet once it ran"))
    if problems:
        raise InvalidValue(table, problems)


def _schedule(request: Request, domain: str, ref: str, body: ActivateIn, who: Principal) -> JSONResponse:
    assert body.at is not None and body.reason is not None
    table = lifecycle.table_of(domain)
    version = if_match(request, table, "scheduling an activation", given=body.expected_version)
    assert version is not None
    with server(request).connection() as conn:
        draft = lifecycle.resolve(conn, domain, ref)
        try:
            made = schedules.schedule(conn, domain, draft.id, version, body.at.astimezone(UTC), actor=who.actor,
                                      reason=body.reason)
        except InvalidValue as exc:  # the database names its argument run_at; here it is the body's `at`
            raise InvalidValue(exc.table, [FieldError("at", e.message.removeprefix("run_at ")) if e.field == "run_at"
                                           else e for e in exc.errors]) from exc
    answer = ScheduleOut.model_validate(made.json())
    location = str(request.url_for("get_schedule", schedule_id=str(made.id)))
    return JSONResponse(jsonable_encoder(answer), status_code=202, headers={"Location": location})


@router.post("/config/{domain}/rollback", response_model=GoneLiveOut, response_model_exclude_unset=True,
             responses=WRITE_ERRORS)
async def rollback(request: Request, response: Response, domain: DomainPath, body: RollbackIn, who: Operator,
                   wait_applied: WaitApplied = None) -> dict[str, Any]:
    """The archived row that was live most recently goes live again (only if it is expected_id, when given).

    With ?wait_applied=SECONDS, the answer then waits for every live client to apply it (see `applied`)."""

    def write(conn: psycopg.Connection[Any]) -> ConfigRow:
        domain_of(domain)
        expected = None if body.expected_id is None else lifecycle.resolve(conn, domain, body.expected_id).id
        return lifecycle.rollback(conn, domain, actor=who.actor, reason=body.reason, expected_id=expected)

    return await _go_live(request, response, write, wait_applied)


async def _go_live(request: Request, response: Response, write: Callable[[psycopg.Connection[Any]], ConfigRow],
                   wait_applied: float | None) -> dict[str, Any]:
    """`write` on a pooled connection in a worker thread, this process serving the row before the answer; then,
    if asked, the wait for the fleet, holding no connection between its looks."""

    def go_live() -> tuple[ConfigRow, int]:
        with server(request).connection() as conn:
            row = write(conn)
            live(request, response, conn, [row])
            made = lifecycle.last_activation(conn, row.domain, row.id) if wait_applied is not None else None
        return row, made.seq if made is not None else 0

    row, activation = await run_in_threadpool(go_live)
    with_etag(response, row)
    answer = row_json(row)
    if wait_applied is not None:
        answer["applied"] = await fleet_routes.wait_applied(request, response, row.domain, activation, wait_applied)
    return answer


@router.post("/config/{domain}/rows/{ref}/restore", response_model=RowOut, status_code=201, responses=WRITE_ERRORS)
def restore(request: Request, response: Response, domain: DomainPath, ref: RefPath, body: RestoreIn, who: Operator,
            conn: Connection) -> dict[str, Any]:
    """An archived row back as a new draft."""
    archived = lifecycle.resolve(conn, domain_of(domain), ref)
    row = lifecycle.restore(conn, domain, archived.id, actor=who.actor, reason=body.reason, name=body.name)
    return _created(request, response, row)
