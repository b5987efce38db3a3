"""Writing the event stream (GET /api/v1/stream) straight to the ASGI server, ahead of the app's routing.

A stream is held open for as long as a bot runs, by tens of thousands of bots at once: what one holds is
most of the server's memory, and each change is written to every one of them at once. So `StreamFirst`
answers GET /api/v1/stream itself, outside FastAPI's routing (whose per-request exit stacks and the
middleware's coroutines would be held for the stream's whole life, and each write would pass through every
middleware), checking the caller and the parameters as the documented route does (routes/stream.py, which
still answers what this does not: invalid parameters, other servers' requests). Both write with
`write_events`: one coroutine per connection, without a task watching for the client to leave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .. import lifecycle
from ..domains import DOMAINS, Role
from ..errors import ConfigError
from .deps import authenticate, bearer_token, require
from .middleware import SecurityHeaders
from .problems import config_problem

if TYPE_CHECKING:
    from .state import ServerState
    from .stream import Hub, Subscriber

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/api/v1/stream"
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"x-accel-buffering", b"no")]
MAX_DOMAINS = 200  # characters of ?domains=, as the route declares it
MAX_EVENT_ID = 40  # characters of Last-Event-ID, likewise


def chosen_domains(text: str | None) -> tuple[str, ...]:
    """?domains=risk,trading as a tuple (every domain when absent or empty); UnknownDomain (404) for a bad one."""
    if not text:
        return DOMAINS
    chosen = tuple(d.strip() for d in text.split(",") if d.strip())
    for domain in chosen:
        lifecycle.model_of(domain)
    return chosen


async def write_events(hub: Hub, sub: Subscriber, receive: Receive, send: Send,
                       headers: list[tuple[bytes, bytes]]) -> None:
    """The response: the subscriber's events, written as they come, until it ends or the client leaves."""
    sub.task = asyncio.current_task()
    link = Link(hub, sub, receive, send)
    loop = asyncio.get_running_loop()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while True:
            # A client that stopped reading blocks the write once its socket buffers are full: the hub's
            # heartbeat lets it go after SEND_TIMEOUT (uvicorn closes a response left unfinished).
            if link.unfinished is not None:
                sending, awaited = link.unfinished
                link.unfinished = None
                sub.writing = time.monotonic()
                await _finish(sending, awaited)
                sub.writing = 0.0
            elif sub.pending:
                body = sub.pending.pop(0)
                sub.writing = time.monotonic()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                sub.writing = 0.0
            elif sub.ended:
                break
            else:
                sub.waiter = waiter = loop.create_future()
                await waiter
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the client went away (a server that says so when written to)
    except asyncio.CancelledError:
        if not sub.stalled:
            raise
    finally:
        link.close()
        hub.leave(sub)
        sub.task = None


Sending = Generator[Any, None, None]


class Link:
    """What stands between the hub and one connection, so that an idle stream costs no task and an event no
    task switch: an event for a waiting writer is written at once, from the hub's loop over its clients; and
    receive() is stepped here, on the futures it waits for, to tell the hub as soon as the client leaves.

    A write the server cannot complete at once (the client's buffers are full) is finished by the writer.
    """

    __slots__ = ("_hub", "_listening", "_receive", "_send", "_sub", "closed", "unfinished")

    def __init__(self, hub: Hub, sub: Subscriber, receive: Receive, send: Send) -> None:
        self._hub, self._sub, self._receive, self._send = hub, sub, receive, send
        self.closed = False
        self.unfinished: tuple[Sending, object] | None = None
        self._listening: Generator[Any, None, Message] = receive().__await__()
        self._hear()
        sub.direct = self.write

    def write(self, body: bytes) -> None:
        try:
            sending: Sending = self._send({"type": "http.response.body", "body": body, "more_body": True}).__await__()
            awaited = sending.send(None)
        except StopIteration:
            return
        except Exception:  # a server whose send needs its own task (anyio): the writer sends, from now on
            self._sub.direct = None
            self._sub.pending.insert(0, body)
        else:
            self.unfinished = sending, awaited
        self._sub.wake()

    def _hear(self, _: object = None) -> None:
        while not self.closed:
            try:
                awaited = self._listening.send(None)
            except StopIteration as done:
                if done.value.get("type") == "http.request":  # the request's body (none, for a GET): not news
                    self._listening = self._receive().__await__()
                    continue
            except (Exception, asyncio.CancelledError):
                pass  # a receive that fails: nothing more can be heard from this client either
            else:
                if isinstance(awaited, asyncio.Future):
                    awaited.add_done_callback(self._hear)
                else:  # a bare yield: again at the next turn of the loop
                    asyncio.get_running_loop().call_soon(self._hear)
                return
            self.close()
            self._hub.gone(self._sub)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sub.direct = None
            self._listening.close()


async def _finish(sending: Sending, awaited: object) -> None:
    """The rest of a write that Link.write began: the server's send, resumed as what it waits for is done."""
    while True:
        if isinstance(awaited, asyncio.Future):
            awaited._asyncio_future_blocking = False  # as a task does with what it is handed, before awaiting it
        try:
            await (awaited if isinstance(awaited, asyncio.Future) else asyncio.sleep(0))
        except asyncio.CancelledError:
            sending.close()
            raise
        except Exception:  # the send sees it as it resumes
            pass
        try:
            awaited = sending.send(None)
        except StopIteration:
            return


class StreamFirst:
    """Outermost middleware: GET /api/v1/stream with valid parameters is answered here, the rest by the app.

    Caller and refusals as the route has them (problem+json with the security headers): the Reader role, an
    unknown domain 404, a full server 503. Parameters the route would refuse (422) go to it, as do other
    methods and any failure that is not a ConfigError (the app's handlers answer those).
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app, self.state = app, state
        self.tls = state.settings.tls
        self.headers = [*HEADERS, *SecurityHeaders(app, self.tls).headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        asked = _parameters(scope)
        if asked is None:
            return await self.app(scope, receive, send)
        authorization, domains, last_event_id = asked
        client, hub = scope.get("client"), self.state.hub
        try:
            who = await authenticate(self.state, bearer_token(authorization), client[0] if client else "unknown")
            sub = hub.subscribe(chosen_domains(domains), last_event_id, require(who, Role.READER, "reading settings"))
        except ConfigError as exc:
            return await SecurityHeaders(config_problem(exc), self.tls)(scope, receive, send)
        except Exception:  # the database failing under the check: the app's handlers answer it, as for any route
            return await self.app(scope, receive, send)
        await write_events(hub, sub, receive, send, self.headers)


def _parameters(scope: Scope) -> tuple[str | None, str | None, str | None] | None:
    """Authorization, ?domains= and Last-Event-ID as the route reads them; None if the route would refuse them."""
    authorization = last_event_id = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"last-event-id" and last_event_id is None:
            last_event_id = value.decode("latin-1")
    domains = None
    if scope["query_string"]:
        found: Iterable[tuple[str, str]] = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        for key, value in found:
            if key == "domains":
                domains = value  # the last one, as the route's query parameter takes it
    if (domains is not None and len(domains) > MAX_DOMAINS) or (
            last_event_id is not None and len(last_event_id) > MAX_EVENT_ID):
        return None
    return authorization, domains, last_event_id
