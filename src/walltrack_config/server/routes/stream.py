"""GET /api/v1/stream: the active settings as Server-Sent Events, for bots and open pages."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.types import Receive, Scope, Send

from ...domains import DOMAINS
from ..deps import Reader, server
from ..stream import Hub, Subscriber
from ._shared import domain_of

router = APIRouter(tags=["stream"])

SEND_TIMEOUT = 30.0  # seconds a write to one client may wait for it to read

STREAM_DOC = """Server-Sent Events. On connect, `snapshot` (every requested domain's active row); then `change` per
activation or rollback (domain, id, version, name, settings, actor, reason, activation). Each event's id is
the activation sequence: reconnect with Last-Event-ID to get only what you missed (or a fresh snapshot).
`status` says when the server lost or regained the database; `resync` means you fell behind: reconnect.
A comment line every 15 s keeps the connection alive."""


class EventStream(Response):
    """The response: the subscriber's queue written out until the client leaves or is dropped.

    Not a StreamingResponse, to hold as little as possible per connection: one coroutine, plus one small task
    that notices the client leaving.
    """

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, sub: Subscriber) -> None:
        super().__init__(media_type=self.media_type)
        self.hub, self.sub = hub, sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.sub

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            sub.dropped = True
            if not sub.queue.full():
                sub.queue.put_nowait(None)

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"x-accel-buffering", b"no")]})
            while (body := await sub.queue.get()) is not None:
                # A client that stopped reading blocks the write once its socket buffers are full; past
                # SEND_TIMEOUT it is let go (uvicorn closes a connection whose response was left unfinished).
                async with asyncio.timeout(SEND_TIMEOUT):
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, TimeoutError):
            pass  # the client went away, or stopped reading
        finally:
            self.hub.leave(sub)
            watcher.cancel()


@router.get("/stream", response_class=EventStream, status_code=200,
            responses={200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC}})
async def stream(request: Request, who: Reader,
                 domains: Annotated[str | None, Query(max_length=200, description="Comma-separated; default all.")]
                 = None,
                 last_event_id: Annotated[str | None, Header(max_length=40)] = None) -> EventStream:
    """Live settings as Server-Sent Events (see the description)."""
    chosen = DOMAINS if not domains else tuple(domain_of(d.strip()) for d in domains.split(",") if d.strip())
    hub = server(request).hub
    return EventStream(hub, hub.subscribe(chosen, last_event_id, who))
