"""GET /events: the bots' event stream (the same hub, the same events) for an open page, signed in by its
session cookie, since a browser's EventSource cannot send an Authorization header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import Response

from ...domains import DOMAINS
from ..deps import server
from ..routes.stream import EventStream
from .routing import page_router
from .web import PageReader

router = page_router()


@router.get("/events")
async def events(request: Request, who: PageReader,
                 last_event_id: Annotated[str | None, Header(max_length=40)] = None) -> Response:
    hub = server(request).hub
    return EventStream(hub, hub.subscribe(DOMAINS, last_event_id, who))
