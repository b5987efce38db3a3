"""Change requests in the console: ask for approval of a draft (editor), review what it would change, approve or
reject it (operator, never the one who asked), and see what is still missing before it can go live.

The database is the gate (a trigger refuses draft → active without enough approvals, whichever door activates):
these pages show its state and post to the same core calls as the API and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import changes, lifecycle
from ...diff import Change, diff_rows
from ...errors import ConcurrentChange, InvalidTransition, InvalidValue, NotFound
from ...lifecycle import ConfigRow
from . import approvals, editing
from .drafts import Editor, editor_page, in_db
from .routing import page_router
from .web import Form, PageEditor, PageOperator, PageReader, redirect, render

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

router = page_router()

RECENT = 50  # requests on the "all" list
MAX_TEXT = 2000  # a reason or a comment, as the database keeps it
#: Refusals the request pages show in place (the rest is the console's error page).
SHOWN = (ConcurrentChange, InvalidTransition, InvalidValue)
NOTICES = {
    "requested": "Approval requested. Operators other than you approve it here; then it can go live.",
    "approved": "Approved.",
    "rejected": "Rejected: the request is closed. A new request is needed for this draft.",
}


@dataclass(frozen=True)
class Card:
    """A request as its page shows it: the draft now, the active row, what would change (pending only)."""

    request: changes.ChangeRequest
    draft: ConfigRow | None  # None once discarded
    active: ConfigRow
    changes: list[Change]
    units: dict[str, str]


def _card(conn: Conn, found: changes.ChangeRequest) -> Card:
    active = lifecycle.active_row(conn, found.domain)
    try:
        draft: ConfigRow | None = lifecycle.get(conn, found.domain, found.config_id)
    except NotFound:
        draft = None
    # What it changes is worth reviewing while it can still go live; after that the history tells.
    shown = diff_rows(active, draft) if draft is not None and found.status == "pending" else []
    return Card(found, draft, active, shown, editing.units(found.domain))


def _comment(posted: dict[str, str]) -> str | None:
    return posted.get("comment", "").strip()[:MAX_TEXT] or None


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(request: Request, who: PageReader, show: Annotated[str, Query(max_length=10)] = "") -> Response:
    everything = show == "all"

    def read(conn: Conn) -> tuple[list[Card], list[changes.Policy]]:
        found = changes.requests(conn, status=None if everything else "pending", limit=RECENT if everything else 100)
        return [_card(conn, r) for r in found], changes.policies(conn)

    cards, policies = await run_in_threadpool(in_db(request, read))
    return render(request, "requests.html", title="Requests", cards=cards, everything=everything, policies=policies)


async def _detail(request: Request, request_id: str, status: int = 200, **context: Any) -> Response:
    card = await run_in_threadpool(in_db(request, lambda conn: _card(conn, changes.get(conn, request_id))))
    r = card.request
    return render(request, "request.html", status, title=f"Request {str(r.id)[:8]}", card=card, domain=r.domain,
                  **context)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(request: Request, request_id: str, who: PageReader,
                       done: Annotated[str, Query(max_length=20)] = "") -> Response:
    return await _detail(request, request_id, notice=NOTICES.get(done))


@router.post("/requests/{request_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, request_id: str, who: PageOperator, posted: Form) -> Response:
    comment = _comment(posted)
    try:
        done = await run_in_threadpool(in_db(request, lambda conn: changes.approve(
            conn, request_id, actor=who.actor, comment=comment)))
    except SHOWN as exc:
        return await _detail(request, request_id, exc.http_status, error=str(exc))
    return redirect(f"/requests/{done.id}?done=approved")


@router.post("/requests/{request_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, request_id: str, who: PageOperator, posted: Form) -> Response:
    comment = _comment(posted)
    if comment is None:
        return await _detail(request, request_id, 422,
                             error="Say why it is rejected (the comment tells the requester): nothing was done.")
    try:
        done = await run_in_threadpool(in_db(request, lambda conn: changes.reject(
            conn, request_id, actor=who.actor, comment=comment)))
    except SHOWN as exc:
        return await _detail(request, request_id, exc.http_status, error=str(exc))
    return redirect(f"/requests/{done.id}?done=rejected")


@router.post("/domains/{domain}/drafts/{row_id}/request", response_class=HTMLResponse)
async def request_approval(request: Request, domain: str, row_id: str, who: PageEditor, posted: Form) -> Response:
    """The draft editor's "Request approval": for the version the editor showed, with a reason."""
    version, reason = editing.version_of(domain, posted), posted.get("reason", "").strip()

    def write(conn: Conn) -> changes.ChangeRequest | tuple[ConfigRow, ConfigRow, Editor, int]:
        row = lifecycle.get(conn, domain, row_id)
        status = 422
        if not reason:
            refusal = "Say why it should go live (the approvers read it): nothing was requested."
        elif len(reason) > MAX_TEXT:
            refusal = f"The reason is longer than {MAX_TEXT} characters: nothing was requested."
        else:
            try:
                return changes.request(conn, domain, row.id, version, actor=who.actor, reason=reason)
            except SHOWN as exc:
                row, status = lifecycle.get(conn, domain, row_id), exc.http_status
                refusal = f"Nothing was requested: {exc}"
        return row, lifecycle.active_row(conn, domain), Editor(
            approval=approvals.for_row(conn, row), request_error=refusal, request_reason=reason), status

    done = await run_in_threadpool(in_db(request, write))
    if isinstance(done, changes.ChangeRequest):
        return redirect(f"/requests/{done.id}?done=requested")
    return editor_page(request, *done)
