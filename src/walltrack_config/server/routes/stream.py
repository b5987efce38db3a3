"""GET /api/v1/stream: the active settings as Server-Sent Events, for bots and open pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.types import Receive, Scope, Send

from ..deps import Reader, server
from ..sse import HEADERS, MAX_DOMAINS, MAX_EVENT_ID, chosen_domains, write_events
from ..stream import Hub, Subscriber

router = APIRouter(tags=["stream"])

STREAM_DOC = """Server-Sent Events. On connect, `snapshot` (every requested domain's active row); then `change` per
activation or rollback (domain, id, version, name, settings, actor, reason, activation). Each event's id is
the activation sequence: reconnect with Last-Event-ID to get only what you missed (or a fresh snapshot).
`status` says when the server lost or regained the database; `resync` means you fell behind: reconnect.
A comment line every 15 s keeps the connection alive."""


class EventStream(Response):
    """The response: the subscriber's events, written by the same coroutine as sse.StreamFirst's (which answers
    this route's valid requests before they reach the app; this answers the console's /events, and any server
    that runs the app without it)."""

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, sub: Subscriber) -> None:
        super().__init__(media_type=self.media_type)
        self.hub, self.sub = hub, sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await write_events(self.hub, self.sub, receive, send, HEADERS)


@router.get("/stream", response_class=EventStream, status_code=200,
            responses={200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC}})
async def stream(request: Request, who: Reader,
                 domains: Annotated[str | None, Query(max_length=MAX_DOMAINS,
                                                      description="Comma-separated; default all.")] = None,
                 last_event_id: Annotated[str | None, Header(max_length=MAX_EVENT_ID)] = None) -> EventStream:
    """Live settings as Server-Sent Events (see the description)."""
    hub = server(request).hub
    return EventStream(hub, hub.subscribe(chosen_domains(domains), last_event_id, who))
