"""Scheduled activations in the console: what is waiting to go live and when, what became of the recent ones
(done, failed and why, missed, cancelled), and cancelling one (operator).

Schedules are made on a draft's activate page (activation.schedule); the server's background loop runs them.
The page looks again every two seconds, so one firing while it is open shows without a reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import schedules
from ...errors import InvalidTransition
from .drafts import in_db
from .routing import page_router
from .web import Form, PageOperator, PageReader, redirect, render

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

router = page_router()

RECENT = 50
NOTICES = {"scheduled": "Scheduled: {}.", "cancelled": "Cancelled: {}."}


def _said(s: schedules.Schedule) -> str:
    from .filters import when

    return f"{s.domain} “{s.draft_name or 'a discarded draft'}” v{s.version} at {when(s.run_at)}"


async def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    def read(conn: Conn) -> tuple[list[schedules.Schedule], list[schedules.Schedule]]:
        pending = schedules.schedules(conn, status="pending")
        recent = [s for s in schedules.schedules(conn, status=None, limit=RECENT + len(pending))
                  if s.status != "pending"][:RECENT]
        return pending, recent

    pending, recent = await run_in_threadpool(in_db(request, read))
    return render(request, "schedules.html", status, title="Schedules", pending=pending, recent=recent, **context)


@router.get("/schedules", response_class=HTMLResponse)
async def schedules_page(request: Request, who: PageReader, done: Annotated[str, Query(max_length=20)] = "",
                         id: Annotated[str, Query(max_length=40)] = "") -> Response:
    notice = None
    if done in NOTICES and id:
        found = await run_in_threadpool(in_db(request, lambda conn: schedules.get(conn, id)))
        notice = NOTICES[done].format(_said(found))
    return await _page(request, notice=notice, highlight=id)


@router.post("/schedules/{schedule_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, schedule_id: str, who: PageOperator, posted: Form) -> Response:
    reason = posted.get("reason", "").strip()[:2000] or None
    try:
        done = await run_in_threadpool(in_db(request, lambda conn: schedules.cancel(
            conn, schedule_id, actor=who.actor, reason=reason)))
    except InvalidTransition as exc:  # it ran, failed or was cancelled meanwhile
        return await _page(request, exc.http_status, error=f"Nothing was cancelled: {exc}")
    return redirect("/schedules?" + urlencode({"done": "cancelled", "id": str(done.id)}))
