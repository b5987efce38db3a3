"""Making settings live from the console: activate a draft, roll back, restore an archived row as a draft.

Each is a confirm page showing exactly what will change, then a post carrying what was reviewed (the draft's
version, the rollback's target): if that moved in between, nothing is done and the page comes back with the
new difference. After going live, a page follows the fleet applying it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import fleet, lifecycle, schedules
from ...diff import diff_rows
from ...errors import ApprovalRequired, InvalidTransition, InvalidValue, StaleVersion
from ...lifecycle import ConfigRow
from . import approvals, editing
from .drafts import in_db
from .routing import page_router
from .web import Form, PageOperator, PageReader, redirect, render

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

router = page_router()


@dataclass
class Confirm:
    """A confirm page: what will change (old -> new), the form that does it, and why it was refused, if it was."""

    title: str
    intro: str
    action: str
    button: str
    old: ConfigRow
    new: ConfigRow
    hidden: dict[str, str] = field(default_factory=dict)
    reason_required: bool = True
    danger: bool = False
    back: str = ""
    error: str | None = None
    status: int = 200
    # An activation's page only: what the domain's policy still needs, and the form that schedules it instead.
    approval: approvals.Approval | None = None
    scheduled: list[schedules.Schedule] = field(default_factory=list)  # already waiting to make it live
    schedule_action: str | None = None
    run_at: str = ""  # what the schedule form had typed in, when it is shown again
    schedule_reason: str = ""
    schedule_error: str | None = None

    def refused(self, error: str, status: int) -> Confirm:
        return replace(self, error=error, status=status)

    def schedule_refused(self, error: str, status: int, run_at: str, reason: str) -> Confirm:
        return replace(self, schedule_error=error, status=status, run_at=run_at[:40], schedule_reason=reason)


def confirm_page(request: Request, page: Confirm) -> Response:
    domain = page.new.domain
    now = datetime.now(UTC)
    return render(request, "confirm.html", page.status, title=page.title, page=page, domain=domain,
                  changes=diff_rows(page.old, page.new), units=editing.units(domain), approval=page.approval,
                  now=now, earliest=now.strftime("%Y-%m-%dT%H:%M"))


def _activation(conn: Conn, domain: str, row_id: str) -> Confirm:
    """The activate page of a draft: its difference with the active row, what approvals it still needs, and the
    schedules already waiting for it."""
    draft, active = lifecycle.get(conn, domain, row_id), lifecycle.active_row(conn, domain)
    if draft.status != "draft":
        raise InvalidTransition(lifecycle.table_of(draft.domain), f"'{draft.name}' is {draft.status}, not a draft",
                                "only a draft is activated; roll back or restore an archived row instead")
    return Confirm(
        f"Activate {draft.name}", f"Draft “{draft.name}” version {draft.version} replaces the active settings "
        f"(“{active.name}” v{active.version}); every bot following {draft.domain} applies it.",
        f"/domains/{draft.domain}/drafts/{draft.id}/activate", f"Activate version {draft.version}", active, draft,
        {"version": str(draft.version)}, back=f"/domains/{draft.domain}/drafts/{draft.id}",
        approval=approvals.for_row(conn, draft), scheduled=approvals.scheduled(conn, draft),
        schedule_action=f"/domains/{draft.domain}/drafts/{draft.id}/schedule")


def _rollback(active: ConfigRow, target: ConfigRow) -> Confirm:
    return Confirm(
        f"Roll back {active.domain}", f"“{target.name}” v{target.version}, live before, replaces “{active.name}” "
        f"v{active.version}, which is archived.", f"/domains/{active.domain}/rollback", "Roll back", active, target,
        {"target": str(target.id)}, danger=True, back=f"/domains/{active.domain}")


def _restore(archived: ConfigRow, active: ConfigRow) -> Confirm:
    if archived.status != "archived":
        raise InvalidTransition(lifecycle.table_of(archived.domain), f"'{archived.name}' is {archived.status}",
                                "only an archived row is restored")
    return Confirm(
        f"Restore {archived.name}", f"A new draft with the settings of archived “{archived.name}” "
        f"v{archived.version}; nothing goes live until it is activated. Compared with the active settings:",
        f"/domains/{archived.domain}/rows/{archived.id}/restore", "Restore as a draft", active, archived,
        reason_required=False, back=f"/domains/{archived.domain}")


def _reason(posted: dict[str, str]) -> str | None:
    return posted.get("reason", "").strip() or None


NO_REASON = "Say why (the reason goes in the history): nothing was done."


@router.get("/domains/{domain}/drafts/{row_id}/activate", response_class=HTMLResponse)
async def activate_page(request: Request, domain: str, row_id: str, who: PageOperator) -> Response:
    page = await run_in_threadpool(in_db(request, lambda conn: _activation(conn, domain, row_id)))
    return confirm_page(request, page)


@router.post("/domains/{domain}/drafts/{row_id}/activate")
async def activate(request: Request, domain: str, row_id: str, who: PageOperator, posted: Form) -> Response:
    version, reason = editing.version_of(domain, posted), _reason(posted)

    def write(conn: Conn) -> int | Confirm:
        if reason is None:
            return _activation(conn, domain, row_id).refused(NO_REASON, 422)
        try:
            row = lifecycle.activate(conn, domain, row_id, expected_version=version, actor=who.actor, reason=reason)
        except StaleVersion:
            page = _activation(conn, domain, row_id)
            return page.refused(_edited_since(page.new, version, "activated"), 409)
        except ApprovalRequired as exc:
            return _activation(conn, domain, row_id).refused(
                f"Not activated: {exc}. {domain} needs approvals before a draft goes live; what is missing is "
                "below.", exc.http_status)
        return _seq(conn, row)

    done = await run_in_threadpool(in_db(request, write))
    return _gone_live(request, domain, done)


def _edited_since(draft: ConfigRow, version: int, what: str) -> str:
    return (f"{draft.updated_by or 'Someone'} saved this draft (version {draft.version}) after you reviewed "
            f"version {version}: nothing was {what}. Here is what it would change now.")


def _utc(text: str) -> datetime | None:
    """A datetime-local input's value (no zone: read as UTC, as every time on these pages is), or None: also for
    a time with an offset that puts it outside the years 1 to 9999 in UTC (0001-01-01T00:00+01:00)."""
    if not text or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


@router.post("/domains/{domain}/drafts/{row_id}/schedule")
async def schedule(request: Request, domain: str, row_id: str, who: PageOperator, posted: Form) -> Response:
    """The activate page's other form: the draft, at the version reviewed, goes live at a time given in UTC."""
    version, reason, when = editing.version_of(domain, posted), _reason(posted), posted.get("run_at", "").strip()

    def write(conn: Conn) -> schedules.Schedule | Confirm:
        page = _activation(conn, domain, row_id)
        run_at = _utc(when)
        if run_at is None:
            return page.schedule_refused("Give the date and time it goes live, in UTC: nothing was scheduled.", 422,
                                         when, reason or "")
        if reason is None:
            return page.schedule_refused("Say why (the reason goes in the history): nothing was scheduled.", 422,
                                         when, "")
        try:
            return schedules.schedule(conn, domain, page.new.id, version, run_at, actor=who.actor, reason=reason)
        except StaleVersion:
            page = _activation(conn, domain, row_id)
            return page.schedule_refused(_edited_since(page.new, version, "scheduled"), 409, when, reason)
        except (InvalidValue, InvalidTransition) as exc:
            return page.schedule_refused(f"Nothing was scheduled: {exc}", exc.http_status, when, reason)

    done = await run_in_threadpool(in_db(request, write))
    if isinstance(done, Confirm):
        return confirm_page(request, done)
    return redirect(f"/schedules?done=scheduled&id={done.id}")


@router.get("/domains/{domain}/rollback", response_class=HTMLResponse)
async def rollback_page(request: Request, domain: str, who: PageOperator) -> Response:
    page = await run_in_threadpool(in_db(request, lambda conn: _rollback(
        lifecycle.active_row(conn, domain), lifecycle.rollback_target(conn, domain))))
    return confirm_page(request, page)


@router.post("/domains/{domain}/rollback")
async def rollback(request: Request, domain: str, who: PageOperator, posted: Form) -> Response:
    reason = _reason(posted)

    def write(conn: Conn) -> int | Confirm:
        if reason is None:
            return _rollback(lifecycle.active_row(conn, domain), lifecycle.rollback_target(conn, domain)).refused(
                NO_REASON, 422)
        try:
            row = lifecycle.rollback(conn, domain, actor=who.actor, reason=reason,
                                     expected_id=posted.get("target", ""))
        except StaleVersion:
            return _rollback(lifecycle.active_row(conn, domain), lifecycle.rollback_target(conn, domain)).refused(
                "The row a rollback brings back changed since you looked (someone activated or rolled back): "
                "nothing was done. Here is what it would do now.", 409)
        return _seq(conn, row)

    done = await run_in_threadpool(in_db(request, write))
    return _gone_live(request, domain, done)


@router.get("/domains/{domain}/rows/{row_id}/restore", response_class=HTMLResponse)
async def restore_page(request: Request, domain: str, row_id: str, who: PageOperator) -> Response:
    page = await run_in_threadpool(in_db(request, lambda conn: _restore(
        lifecycle.get(conn, domain, row_id), lifecycle.active_row(conn, domain))))
    return confirm_page(request, page)


@router.post("/domains/{domain}/rows/{row_id}/restore")
async def restore(request: Request, domain: str, row_id: str, who: PageOperator, posted: Form) -> Response:
    draft = await run_in_threadpool(in_db(request, lambda conn: lifecycle.restore(
        conn, domain, row_id, actor=who.actor, reason=_reason(posted))))
    return redirect(f"/domains/{domain}/drafts/{draft.id}")


@router.get("/domains/{domain}/activated", response_class=HTMLResponse)
async def activated(request: Request, domain: str, who: PageReader,
                    seq: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    def read(conn: Conn) -> tuple[ConfigRow, lifecycle.Activation | None, list[fleet.FleetClient]]:
        active = lifecycle.active_row(conn, domain)
        following = [c for c in fleet.clients(conn) if domain in c.domains]
        return active, lifecycle.last_activation(conn, domain, active.id), following

    active, made, clients = await run_in_threadpool(in_db(request, read))
    wanted = int(seq) if seq and seq.isascii() and seq.isdigit() else (made.seq if made else 0)
    live = [c for c in clients if not c.stale]
    return render(request, "activated.html", title=f"{domain}: live", domain=domain, active=active, made=made,
                  seq=wanted, clients=clients, applied=sum(1 for c in live if c.applied.get(domain, 0) >= wanted),
                  live=len(live))


def _seq(conn: Conn, row: ConfigRow) -> int:
    made = lifecycle.last_activation(conn, row.domain, row.id)
    return made.seq if made is not None else 0


def _gone_live(request: Request, domain: str, done: int | Confirm) -> Response:
    if isinstance(done, Confirm):
        return confirm_page(request, done)
    return redirect(f"/domains/{domain}/activated?seq={done}")
