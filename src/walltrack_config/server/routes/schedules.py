"""Scheduled activations (V14): list (reader) and cancel (operator). A schedule is made by activating a draft
with {"at": ...} (routes/drafts.py); every server's background rounds run it when its time comes, exactly once."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from ... import schedules
from ...domains import DomainName
from ..deps import Connection, Operator, Reader
from ..schemas import CancelIn, ScheduleOut, ScheduleStatus
from ._shared import Responses

router = APIRouter(tags=["schedules"])

SchedulePath = Annotated[str, Path(min_length=6, max_length=36, pattern=r"^[0-9A-Fa-f-]+$",
                                   description="A schedule's id, or a unique prefix of it (6+ characters).")]

SCHEDULE_ERRORS: Responses = {
    404: {"description": "No such schedule."},
    409: {"description": "It is no longer pending (it ran, failed, was missed or cancelled), or an id prefix names "
                         "several schedules."},
}


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(who: Reader, conn: Connection, domain: DomainName | None = None,
                   status: Annotated[ScheduleStatus | Literal["all"], Query(
                       description="Only schedules with this status; all: every one.")] = "pending",
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Scheduled activations: the pending ones, soonest first, unless asked otherwise."""
    chosen = None if status == "all" else status
    return [s.json() for s in schedules.schedules(conn, domain=domain, status=chosen, limit=limit)]


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, responses=SCHEDULE_ERRORS)
def get_schedule(schedule_id: SchedulePath, who: Reader, conn: Connection) -> dict[str, Any]:
    """One scheduled activation, and what came of it."""
    return schedules.get(conn, schedule_id).json()


@router.delete("/schedules/{schedule_id}", response_model=ScheduleOut, responses=SCHEDULE_ERRORS)
def cancel_schedule(schedule_id: SchedulePath, who: Operator, conn: Connection,
                    body: CancelIn | None = None) -> dict[str, Any]:
    """Cancel a pending scheduled activation (the draft stays a draft); the answer is the cancelled schedule."""
    return schedules.cancel(conn, schedule_id, actor=who.actor, reason=body.reason if body else None).json()
