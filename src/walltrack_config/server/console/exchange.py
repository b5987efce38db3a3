"""Export the active settings as a file, and import one: upload, review every domain's diff, then apply.

The preview writes nothing. The apply form carries the document back with the live rows it was reviewed
against, so what is written is what was shown: if a live row moved in between, the new preview is shown instead.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ... import exchange, fields
from ...domains import DOMAINS, Role
from ...errors import FieldError, Forbidden, InvalidFile, InvalidImport, InvalidValue, NothingToDo
from ...lifecycle import ConfigRow
from ..deps import server
from .routing import page_router
from .web import CSRF_FIELD, BadForm, Form, PageEditor, PageReader, render, same_origin

router = page_router()

FILENAME = "walltrack-config.yaml"
UPLOAD = "the uploaded file"


@dataclass(frozen=True)
class Problem:
    domain: str
    field: str
    message: str


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object
    unit: str


@dataclass(frozen=True)
class Planned:
    domain: str
    active: ConfigRow
    changes: list[Change]
    name: str | None


def _problems(exc: InvalidFile | InvalidImport) -> list[Problem]:
    """Each problem with the domain it is in, as the page lists them ('risk.max_drawdown_pct' -> risk, field)."""
    if isinstance(exc, InvalidFile):
        return [Problem("", f"line {exc.line}" if exc.line else "file", exc.reason)]
    found = []
    for p in exc.problems:
        domain, _, field = p.field.partition(".")
        if domain not in DOMAINS:  # 'domains': a problem with the list of domains itself
            domain, field = "", p.field
        found.append(Problem(domain, field, p.message))
    return found


def _planned(plans: list[exchange.ImportPlan]) -> list[Planned]:
    found = []
    for p in plans:
        units = {s.name: s.unit for s in fields.specs(p.domain)}
        found.append(Planned(p.domain, p.active, [Change(c.field, c.old, c.new, units.get(c.field, ""))
                                                  for c in p.changes], p.name))
    return found


def _reviewed(plans: list[exchange.ImportPlan]) -> str:
    """The live rows a preview compared against, for the apply form to carry back."""
    return ";".join(f"{p.domain}:{p.active.id}:{p.active.version}" for p in plans)


def _preview(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, "import_preview.html", status, title="Import preview", **context)


@router.get("/exchange", response_class=HTMLResponse)
async def exchange_page(request: Request, who: PageReader) -> Response:
    return render(request, "exchange.html", title="Import / export", limit=exchange.MAX_FILE_BYTES)


@router.get("/export")
async def export(request: Request, who: PageReader) -> Response:
    def read() -> str:
        with server(request).connection() as conn:
            return exchange.dumps(exchange.export_document(conn), "yaml")

    text = await run_in_threadpool(read)
    return Response(text, media_type="application/yaml",
                    headers={"content-disposition": f'attachment; filename="{FILENAME}"'})


async def _upload(request: Request) -> tuple[bytes, int | None]:
    """The uploaded file's bytes (at most one past the limit, so read_text can say how big it is), once the
    form's CSRF token and origin are checked as web.form checks them (which keeps text fields only)."""
    try:
        async with request.form(max_files=1, max_fields=20) as data:
            sent, upload = data.get(CSRF_FIELD), data.get("file")
            expected: str = getattr(request.state, "csrf", None) or ""
            genuine = isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())
            if not genuine or not same_origin(request):
                raise BadForm
            if not isinstance(upload, UploadFile) or (not upload.filename and not upload.size):
                raise InvalidFile(UPLOAD, "no file was chosen: pick a settings file (YAML or JSON)")
            return await upload.read(exchange.MAX_FILE_BYTES + 1), upload.size
    except HTTPException as exc:  # the multipart parser refusing the body (too many parts, a malformed one)
        raise InvalidFile(UPLOAD, f"not a form upload this page sends ({exc.detail})") from exc


@router.post("/import", response_class=HTMLResponse)
async def import_preview(request: Request, who: PageEditor) -> Response:
    def check(data: bytes, size: int | None) -> tuple[str, list[exchange.ImportPlan]]:
        text = exchange.read_text(data, UPLOAD, size=size)
        document = exchange.loads(text, UPLOAD)
        with server(request).connection() as conn:
            return text, exchange.plan(conn, document, UPLOAD)

    try:
        data, size = await _upload(request)
        text, plans = await run_in_threadpool(check, data, size)
    except (InvalidFile, InvalidImport) as exc:
        return _preview(request, 422, problems=_problems(exc))
    except NothingToDo as exc:
        return _preview(request, nothing=str(exc))
    return _preview(request, plans=_planned(plans), document=text, reviewed=_reviewed(plans))


@router.post("/import/apply", response_class=HTMLResponse)
async def import_apply(request: Request, who: PageEditor, form: Form) -> Response:
    mode, text = form.get("mode", ""), form.get("document", "")
    reason = form.get("reason", "").strip() or None
    if mode not in ("drafts", "activate"):
        raise InvalidValue("import", [FieldError("mode", "choose Create drafts or Activate all")])
    activate = mode == "activate"
    if activate and not who.allows(Role.OPERATOR):  # as the API's import: drafts for editors, live for operators
        raise Forbidden(who.actor, str(who.role), Role.OPERATOR.value, "importing with activate")

    def run() -> tuple[list[exchange.ImportPlan], list[ConfigRow] | None]:
        document = exchange.loads(exchange.read_text(text.encode("utf-8", "surrogatepass"), UPLOAD), UPLOAD)
        with server(request).connection() as conn:
            plans = exchange.plan(conn, document, UPLOAD)
            if (activate and reason is None) or _reviewed(plans) != form.get("reviewed"):
                return plans, None  # shown again, nothing written
            return plans, exchange.apply(conn, plans, actor=who.actor, reason=reason, activate=activate)

    try:
        plans, done = await run_in_threadpool(run)
    except (InvalidFile, InvalidImport) as exc:
        return _preview(request, 422, problems=_problems(exc))
    except NothingToDo as exc:
        return _preview(request, 409, nothing=f"{exc} (it was applied already, or someone else did it)")
    if done is None:
        stale = _reviewed(plans) != form.get("reviewed")
        error = ("The live settings changed since you reviewed this import: review it again against them. "
                 "Nothing was written." if stale else "Activating needs a reason: say why. Nothing was written.")
        return _preview(request, 409 if stale else 422, plans=_planned(plans), document=text,
                        reviewed=_reviewed(plans), error=error, reason=reason or "")
    return render(request, "import_done.html", title="Imported", rows=done, activated=activate, reason=reason)
