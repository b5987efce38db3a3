"""The fleet (V13): the live clients and what each applied (reader); clients over HTTP report and leave here.

A report is written through walltrack.fleet_report with the server's pool, as the caller: only the token
(or user) that first reported a client id may report it again or remove it. Several servers on one
database see one fleet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ... import fleet
from ...errors import DatabaseError, NotFound
from ..deps import Connection, Reader, server
from ..schemas import FleetOut, FleetReportIn
from ._shared import Responses

log = logging.getLogger("walltrack_config.server")

router = APIRouter(tags=["fleet"])

POLL = 0.1  # seconds between two looks at the fleet while a request waits for it
MAX_WAIT = 120  # seconds: a wait holds no connection and no thread, but the caller's request stays open

WaitApplied = Annotated[float | None, Query(
    ge=0, le=MAX_WAIT, description=f"Then wait up to this many seconds (at most {MAX_WAIT}) until every live client "
                                   "following the domain applied the change: the answer's `applied` says whether "
                                   "they all did (`complete`) and names those that did not (`missing`), and "
                                   "X-Applied is complete or incomplete. The change is committed either way.")]

REPORT_ERRORS: Responses = {
    409: {"description": "The client id is another reporter's, or the fleet is full (10,000 clients)."},
    422: {"description": "A value V13 refuses, naming the field."},
}


@router.get("/fleet", response_model=FleetOut)
def list_fleet(who: Reader, conn: Connection) -> dict[str, Any]:
    """Every client that reported (stale ones too), what it applied per domain and how many activations behind."""
    current = fleet.current(conn)
    return {"current": current, "clients": [c.json() for c in fleet.clients(conn)]}


@router.post("/fleet/report", status_code=204, responses=REPORT_ERRORS)
def report(body: FleetReportIn, who: Reader, conn: Connection) -> Response:
    """A client registers or refreshes itself: at start, after applying a change (its callbacks done), and every
    heartbeat. Reported as the caller: only this token (or user) may report this id again, or remove it."""
    info = fleet.ClientInfo(body.id, body.name, body.host, body.pid, body.version, body.transport,
                            tuple(body.domains), body.heartbeat)
    fleet.report(conn, info, {str(d): seq for d, seq in body.applied.items()}, actor=who.actor)
    return Response(status_code=204)


@router.delete("/fleet/{client_id}", status_code=204, responses={
    404: {"description": "No such client (it left already, or was not heard from for 24 h)."},
    409: {"description": "The client is another reporter's."}})
def leave(client_id: Annotated[UUID, Path(description="The client's id.")], who: Reader,
          conn: Connection) -> Response:
    """A client leaving (its LiveConfig stopped)."""
    if not fleet.leave(conn, client_id, actor=who.actor):
        raise NotFound(fleet.TABLE, client_id, f"no client {client_id} in the fleet")
    return Response(status_code=204)


async def wait_applied(request: Request, response: Response, domain: str, activation: int,
                       seconds: float) -> dict[str, Any]:
    """Wait until every live client following `domain` applied `activation`; the `applied` object of the answer.

    Each look borrows a pooled connection in a worker thread and gives it back; between looks the request holds
    neither. The database going away ends the wait early, incomplete: the change is committed all the same.
    """
    state = server(request)

    def look(stale: bool = False) -> list[fleet.FleetClient]:
        with state.connection() as conn:
            return fleet.laggards(conn, domain, activation, stale=stale)

    def count() -> int:
        with state.connection() as conn:
            return fleet.live_count(conn, domain)

    started = time.monotonic()
    deadline = started + seconds
    missing: list[fleet.FleetClient] = []
    stale: list[fleet.FleetClient] = []
    live, detail, complete = 0, None, False
    try:
        while True:
            missing = await run_in_threadpool(look)
            left = deadline - time.monotonic()
            if not missing or left <= 0:
                break
            await asyncio.sleep(min(POLL, left))
        complete = not missing
        stale = await run_in_threadpool(look, True)
        live = await run_in_threadpool(count)
    except DatabaseError as exc:
        log.warning("stopped waiting for the fleet to apply %s activation %s: %s", domain, activation, exc)
        detail = "the database became unavailable while waiting; the change is committed"
        complete = False
    response.headers["X-Applied"] = "complete" if complete else "incomplete"
    return {"activation": activation, "complete": complete, "waited": round(time.monotonic() - started, 3),
            "live": max(live, len(missing)), "missing": [c.json() for c in missing],
            "stale": [c.json() for c in stale], "detail": detail}
