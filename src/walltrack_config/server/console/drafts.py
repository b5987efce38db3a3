"""Drafts in the console: create one, edit it (a refusal keeps what was typed), compare rows, discard.

A save carries the version its form was opened at: when someone saved in between, nothing is written and the
page shows their change, keeping what this user typed over it, so the second save is a choice, not an accident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import audit, fields, lifecycle
from ...diff import Change, diff_rows
from ...errors import ConcurrentChange, FieldError, InvalidValue, StaleVersion
from ...lifecycle import ConfigRow
from ..deps import server
from . import approvals, editing
from .routing import page_router
from .web import Form, PageEditor, PageReader, redirect, render

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

router = page_router()

Ref = Annotated[str, Query(max_length=200)]
T = TypeVar("T")


def in_db(request: Request, work: Callable[[Conn], T]) -> Callable[[], T]:
    """`work` on a pooled connection, as a function for run_in_threadpool."""

    def run() -> T:
        with server(request).connection() as conn:
            return work(conn)

    return run


@dataclass
class Editor:
    """What the editor page shows besides the row: the values in its inputs and why a save was refused."""

    values: dict[str, Any] | None = None
    version: int | None = None  # the version the form carries; the row's by default
    refused: list[FieldError] = field(default_factory=list)
    conflict: dict[str, Any] | None = None  # someone else's save: by, version, at, yours, changes
    saved: str | None = None
    approval: approvals.Approval | None = None  # the domain's policy and the request pending for this draft
    request_error: str | None = None  # why a "Request approval" was refused
    request_reason: str = ""  # what was typed as its reason


def editor_page(request: Request, row: ConfigRow, active: ConfigRow, page: Editor, status: int = 200) -> Response:
    domain = row.domain
    return render(request, "editor.html", status, title=f"{domain}: {row.name}", domain=domain, row=row,
                  active=active, specs=fields.specs(domain), tier_specs=fields.tier_specs(),
                  values=page.values or editing.shown(domain, row), version=page.version or row.version,
                  refused=page.refused, errors=editing.by_field(page.refused), conflict=page.conflict,
                  saved=page.saved, units=editing.units(domain), approval=page.approval,
                  request_error=page.request_error, request_reason=page.request_reason)


@router.post("/domains/{domain}/drafts")
async def new_draft(request: Request, domain: str, who: PageEditor, posted: Form) -> Response:
    draft = await run_in_threadpool(in_db(request, lambda conn: lifecycle.clone(conn, domain, actor=who.actor)))
    return redirect(f"/domains/{domain}/drafts/{draft.id}")


@router.get("/domains/{domain}/drafts/{row_id}", response_class=HTMLResponse)
async def edit_page(request: Request, domain: str, row_id: str, who: PageReader,
                    saved: Annotated[str | None, Query(max_length=12)] = None) -> Response:
    def read(conn: Conn) -> tuple[ConfigRow, ConfigRow, approvals.Approval]:
        row = lifecycle.get(conn, domain, row_id)
        return row, lifecycle.active_row(conn, domain), approvals.for_row(conn, row)

    row, active, approval = await run_in_threadpool(in_db(request, read))
    return editor_page(request, row, active, Editor(saved=saved if saved and saved.isdigit() else None,
                                                    approval=approval))


@router.post("/domains/{domain}/drafts/{row_id}", response_class=HTMLResponse)
async def save(request: Request, domain: str, row_id: str, who: PageEditor, posted: Form) -> Response:
    version = editing.version_of(domain, posted)

    def write(conn: Conn) -> tuple[ConfigRow, ConfigRow, Editor | None]:
        row = lifecycle.get(conn, domain, row_id)
        base = row if row.version == version else editing.as_seen(
            domain, audit.snapshot(conn, domain, row.id, version), row)
        wanted = editing.changes(domain, posted, base)
        try:
            saved = lifecycle.edit(conn, domain, row.id, version, wanted, actor=who.actor)
            return saved, row, None
        except InvalidValue as exc:
            return row, lifecycle.active_row(conn, domain), Editor(
                values=editing.shown(domain, row, posted), version=version, refused=exc.errors,
                approval=approvals.for_row(conn, row))
        except StaleVersion:
            now = lifecycle.get(conn, domain, row.id)
            theirs = diff_rows(base, now)
            return now, lifecycle.active_row(conn, domain), Editor(
                values=editing.shown(domain, now, posted, only=set(wanted)),
                conflict={"by": now.updated_by, "version": now.version, "at": now.updated_at, "yours": version,
                          "changes": theirs}, approval=approvals.for_row(conn, now))

    row, active, refused = await run_in_threadpool(in_db(request, write))
    if refused is None:
        return redirect(f"/domains/{domain}/drafts/{row.id}?saved={row.version}")
    return editor_page(request, row, active, refused, 409 if refused.conflict else 422)


@router.post("/domains/{domain}/drafts/{row_id}/discard")
async def discard(request: Request, domain: str, row_id: str, who: PageEditor, posted: Form) -> Response:
    version = editing.version_of(domain, posted)

    def write(conn: Conn) -> None:
        with conn.transaction():
            lifecycle.lock_writes(conn)  # the version checked is the version deleted
            row = lifecycle.get(conn, domain, row_id)
            if row.version != version:
                raise ConcurrentChange(lifecycle.table_of(domain),
                                       f"{row.updated_by or 'someone'} saved this draft (version {row.version}) "
                                       f"after you opened version {version}; nothing was discarded. Review it "
                                       "again", row.id, version)
            lifecycle.discard(conn, domain, row.id, actor=who.actor)

    await run_in_threadpool(in_db(request, write))
    return redirect(f"/domains/{domain}")


@router.get("/domains/{domain}/diff", response_class=HTMLResponse)
async def diff_page(request: Request, domain: str, who: PageReader, a: Ref = "active", b: Ref = "draft") -> Response:
    def read(conn: Conn) -> tuple[ConfigRow, ConfigRow, list[Change]]:
        old, new = lifecycle.resolve(conn, domain, a), lifecycle.resolve(conn, domain, b)
        return old, new, diff_rows(old, new)

    old, new, changes = await run_in_threadpool(in_db(request, read))
    return render(request, "diff.html", title=f"{domain}: diff", domain=domain, old=old, new=new, changes=changes,
                  units=editing.units(domain))
