"""History (cursor-paged), export and import over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ... import audit, exchange
from ...diff import diff
from ...domains import DOMAINS, Role
from ...errors import FieldError, Forbidden, InvalidValue, NothingToDo
from ...principals import Principal
from ..deps import Connection, Editor, Reader, server
from ..schemas import HistoryPage, ImportOut
from ._shared import Responses, changes_json, domain_of, live, ref_json, row_json

router = APIRouter(tags=["history and files"])

MAX_PAGE = 500


def _entry_json(entry: audit.AuditEntry) -> dict[str, Any]:
    old, new = entry.old_values or {}, entry.new_values or {}
    fields = entry.changed_fields or []
    return {
        "id": entry.id, "domain": entry.config_table.removesuffix("_config"), "config_table": entry.config_table,
        "config_id": str(entry.config_id), "action": entry.action.value, "changed_fields": entry.changed_fields,
        "changes": [{"field": f, "old": old.get(f), "new": new.get(f)} for f in fields],
        "reason": entry.reason, "performed_by": entry.performed_by, "performed_at": entry.performed_at,
        "db_user": entry.db_user, "source_ip": entry.source_ip, "user_agent": entry.user_agent,
    }


@router.get("/history", response_model=HistoryPage)
def history(who: Reader, conn: Connection,
            domain: Annotated[str | None, Query(max_length=40)] = None,
            actor: Annotated[str | None, Query(max_length=200, description="performed_by, exactly.")] = None,
            since: Annotated[datetime | None, Query(description="From this moment (ISO 8601), inclusive.")] = None,
            until: Annotated[datetime | None, Query(description="Up to this moment, exclusive.")] = None,
            limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
            cursor: Annotated[str | None, Query(max_length=20, description="next_cursor of the page before.")] = None,
            ) -> dict[str, Any]:
    """Every change, newest first, in commit order: who, when, why, and each field old → new."""
    if domain is not None:
        domain_of(domain)
    before = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()):
            raise InvalidValue("walltrack.config_audit_log", [FieldError("cursor", "not a cursor from a page before")])
        before = int(cursor)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidValue("walltrack.config_audit_log",
                               [FieldError(name, "needs a time zone (Z or +hh:mm): a bare time is ambiguous")])
    found = audit.entries(conn, domain=domain, actor=actor, since=since, until=until, limit=limit + 1, before=before)
    page = found[:limit]
    return {"entries": [_entry_json(e) for e in page],
            "next_cursor": str(page[-1].id) if len(found) > limit else None}


FILE_RESPONSE: Responses = {200: {"content": {"application/yaml": {}, "application/json": {}},
                       "description": "The active settings, as a file."}}


@router.get("/export", response_model=None, responses=FILE_RESPONSE)
def export(who: Reader, conn: Connection, format: Literal["yaml", "json"] = "yaml",
           domain: Annotated[list[str] | None, Query(max_length=len(DOMAINS))] = None) -> Response:
    """The active settings of every domain (or those named), as the command line's export writes them."""
    for d in domain or []:
        domain_of(d)
    document = exchange.export_document(conn, domain)
    media = "application/json" if format == "json" else "application/yaml"
    return Response(exchange.dumps(document, format), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="walltrack-settings.{format}"'})


IMPORT_BODY = {"requestBody": {"required": True, "description": "A settings file, as export writes it.", "content": {
    "application/yaml": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}}}


@router.post("/import", response_model=ImportOut, openapi_extra=IMPORT_BODY,
             responses={400: {"description": "An unreadable file, or every problem in it at once."},
                        412: {"description": "A live row changed while the import was applied."}})
async def import_file(request: Request, response: Response, who: Editor, dry_run: bool = True,
                      activate: bool = False) -> dict[str, Any]:
    """Check a settings file against every rule (all problems at once); unless dry_run, write one draft per
    domain that differs (activated too with activate=true, which needs role operator), all or nothing."""
    if activate and not dry_run and not who.allows(Role.OPERATOR):
        raise Forbidden(who.actor, str(who.role), Role.OPERATOR.value, "importing with activate")
    data = await request.body()
    return await run_in_threadpool(_import, request, response, who, data, dry_run, activate)


def _import(request: Request, response: Response, who: Principal, data: bytes, dry_run: bool,
            activate: bool) -> dict[str, Any]:
    source = "the request body"
    document = exchange.loads(exchange.read_text(data, source), source)
    with server(request).connection() as conn:
        try:
            plans = exchange.plan(conn, document, source)
        except NothingToDo as exc:
            return {"dry_run": dry_run, "activated": False, "domains": [], "message": str(exc)}
        drafts = [None] * len(plans) if dry_run else exchange.apply(conn, plans, actor=who.actor, activate=activate)
        if activate and not dry_run:
            live(request, response, conn, [d for d in drafts if d is not None])
    domains = [{"domain": p.domain, "active": ref_json(p.active), "changes": changes_json(diff(p.active.settings,
                                                                                                 p.settings)),
                "draft": None if d is None else row_json(d)} for p, d in zip(plans, drafts, strict=True)]
    verb = "would change" if dry_run else "activated" if activate else "drafted"
    return {"dry_run": dry_run, "activated": activate and not dry_run, "domains": domains,
            "message": f"{verb} {', '.join(p.domain for p in plans)}"}
