"""Plain ASGI middleware (no per-request task or copy): security headers on every response, and a cap on
request bodies that holds whether or not the client sends Content-Length."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import TooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The API serves JSON only, and the docs page (routes/docs.py) HTML with its own stylesheet: no script at all.
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"content-security-policy",
     b"default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"cache-control", b"no-store"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, tls: bool = False) -> None:
        self.app = app
        self.headers = [*_HEADERS, _HSTS] if tls else list(_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """TooLarge (413) once a request body passes `limit` bytes: at once from Content-Length, else while it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            from .problems import config_problem

            response = config_problem(TooLarge(int(declared), self.limit))
            response.headers["connection"] = "close"
            return await response(scope, receive, send)
        seen = 0
        refused: TooLarge | None = None

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = TooLarge(seen, self.limit)
                    raise refused
            return message

        async def unless_refused(message: Message) -> None:
            # The app may turn the error it met while reading into an answer of its own (FastAPI: 400); ours wins.
            if refused is None:
                await send(message)

        with contextlib.suppress(TooLarge):  # raised by `counted`, and answered below
            await self.app(scope, counted, unless_refused)
        if refused is not None:
            from .problems import config_problem

            response = config_problem(refused)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
