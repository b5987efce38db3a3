"""Webhooks, for admins: add one (name, URL, the events it hears, its format), remove one, and read the delivery
log (status, attempts, the last error).

A new webhook's secret (it signs every delivery) is generated and shown once, on the page that answers its
creation, as a new API token's is; no page shows it again. A refusal is shown on the page with what was typed kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import webhooks
from ...errors import AlreadyExists, FieldError, InvalidValue, NotFound
from .drafts import in_db
from .routing import page_router
from .web import Form, PageAdmin, redirect, render

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

router = page_router()

EVERY = "*"
EVENT = "event-"  # a checkbox per kind, named event-<kind> (a form posts each field once)
DELIVERIES = 100
SHOWN = (AlreadyExists, InvalidValue, NotFound)
NOTICES = {"removed": "Webhook {} removed; its past deliveries stay in the log."}
NamePath = Annotated[str, Path()]


async def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    def read(conn: Conn) -> tuple[list[webhooks.Webhook], list[webhooks.Delivery]]:
        return webhooks.webhooks(conn), webhooks.deliveries(conn, limit=DELIVERIES)

    hooks, deliveries = await run_in_threadpool(in_db(request, read))
    context.setdefault("new", {"events": [], "format": "json"})
    return render(request, "webhooks.html", status, title="Webhooks", hooks=hooks, deliveries=deliveries,
                  kinds=webhooks.KINDS, formats=webhooks.FORMATS, every=EVERY, **context)


@router.get("/admin/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, who: PageAdmin, done: Annotated[str, Query(max_length=20)] = "",
                        name: Annotated[str, Query(max_length=100)] = "") -> Response:
    notice = NOTICES[done].format(name[:64]) if done in NOTICES else None
    return await _page(request, notice=notice)


@router.post("/admin/webhooks", response_class=HTMLResponse)
async def add(request: Request, who: PageAdmin, posted: Form) -> Response:
    name, url, format_ = posted.get("name", "").strip(), posted.get("url", "").strip(), posted.get("format", "json")
    chosen = [key.removeprefix(EVENT) for key in posted if key.startswith(EVENT)]
    events = [EVERY] if EVERY in chosen else [k for k in webhooks.KINDS if k in chosen]
    kept = {"new": {"name": name, "url": url, "format": format_, "events": events}}

    def write(conn: Conn) -> tuple[webhooks.Webhook, str]:
        if not events:
            raise InvalidValue("walltrack_auth.webhooks", [FieldError("events", "choose at least one event")])
        return webhooks.add(conn, name, url, events=events, format=format_, actor=who.actor)

    try:
        hook, secret = await run_in_threadpool(in_db(request, write))
    except SHOWN as exc:
        return await _page(request, exc.http_status, error=exc, **kept)
    return render(request, "webhook_created.html", title="Webhook added", hook=hook, secret=secret)


@router.post("/admin/webhooks/{name}/remove", response_class=HTMLResponse)
async def remove(request: Request, name: NamePath, who: PageAdmin, posted: Form) -> Response:
    try:
        await run_in_threadpool(in_db(request, lambda conn: webhooks.remove(conn, name, actor=who.actor)))
    except SHOWN as exc:
        return await _page(request, exc.http_status, error=exc)
    return redirect("/admin/webhooks?" + urlencode({"done": "removed", "name": name}))
