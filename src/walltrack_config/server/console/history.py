"""The audit timeline: every change, newest first, filtered by domain, actor and dates, paged by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import audit, fields
from ...domains import DOMAINS, AuditAction
from ...errors import FieldError
from ..deps import server
from .routing import page_router
from .web import PageReader, render

router = page_router()

PAGE = 50
MAX_TEXT = 200  # longer than any name or date: refused on the page rather than sent to the database


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object
    unit: str


@dataclass(frozen=True)
class Entry:
    id: int
    action: str
    domain: str
    row_id: UUID
    row_name: object
    version: object
    at: datetime
    by: str
    db_user: str | None
    reason: str | None
    changes: list[Change]


@dataclass(frozen=True)
class Filters:
    """What the filter form sent, as typed: the page shows it back, and the Older link carries it on."""

    domain: str = ""
    actor: str = ""
    since: str = ""
    until: str = ""

    def query(self, **more: object) -> str:
        given = {k: v for k, v in (vars(self) | more).items() if v not in ("", None)}
        return urlencode(given)

    @property
    def any(self) -> bool:
        return any(vars(self).values())


@dataclass(frozen=True)
class Window:
    """The filters as audit.entries takes them."""

    domain: str | None
    actor: str | None
    since: datetime | None
    until: datetime | None
    before: int | None


def _day(text: str, name: str, problems: list[FieldError]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(FieldError(name, f"{text[:40]!r} is not a date (YYYY-MM-DD)"))
        return None


def _window(chosen: Filters, before: str) -> tuple[Window, list[FieldError]]:
    problems = [FieldError(k, "too long") for k, v in vars(chosen).items() if len(v) > MAX_TEXT]
    if problems:
        return Window(None, None, None, None, None), problems
    if chosen.domain and chosen.domain not in DOMAINS:
        problems.append(FieldError("domain", f"unknown domain; domains are {', '.join(DOMAINS)}"))
    cursor = int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None
    if before and cursor is None:
        problems.append(FieldError("before", "not an entry from the page before"))
    since, until = _day(chosen.since, "since", problems), _day(chosen.until, "until", problems)
    # Dates are UTC days, as every time on these pages is; `until` includes its whole day.
    start = None if since is None else datetime(since.year, since.month, since.day, tzinfo=UTC)
    end = None if until is None else datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
    if start is not None and end is not None and start >= end:
        problems.append(FieldError("until", "is before since"))
    return Window(chosen.domain or None, chosen.actor or None, start, end, cursor), problems


def _entry(e: audit.AuditEntry) -> Entry:
    old, new = e.old_values or {}, e.new_values or {}
    row = new or old
    domain = e.config_table.removesuffix("_config")
    units = {s.name: s.unit for s in fields.specs(domain)} if domain in DOMAINS else {}
    names = list(e.changed_fields or [])
    if not names and e.action in (AuditAction.ACTIVATE, AuditAction.ARCHIVE):
        names = ["status"]  # the trigger lists no setting: what changed is which row is live
    return Entry(e.id, e.action.value, domain, e.config_id, row.get("name"), row.get("version"), e.performed_at,
                 e.performed_by, e.db_user, e.reason,
                 [Change(f, old.get(f), new.get(f), units.get(f, "")) for f in names])


@router.get("/history", response_class=HTMLResponse)
async def history_page(request: Request, who: PageReader, domain: str = "", actor: str = "", since: str = "",
                       until: str = "", before: str = "") -> Response:
    chosen = Filters(domain.strip(), actor.strip(), since.strip(), until.strip())
    window, problems = _window(chosen, before.strip())
    context: dict[str, Any] = {"title": "History", "filters": chosen, "paged": bool(window.before)}
    if problems:
        return render(request, "history.html", 422, entries=[], problems=problems, older=None, **context)

    def read() -> list[audit.AuditEntry]:
        with server(request).connection() as conn:
            return audit.entries(conn, domain=window.domain, actor=window.actor, since=window.since,
                                 until=window.until, limit=PAGE + 1, before=window.before)

    found = await run_in_threadpool(read)
    page = found[:PAGE]
    older = chosen.query(before=page[-1].id) if len(found) > PAGE else None
    return render(request, "history.html", entries=[_entry(e) for e in page], problems=[], older=older, **context)
