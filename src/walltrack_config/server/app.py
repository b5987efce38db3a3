"""The ASGI application: routes under /api/v1, problems, security headers, body cap, and a lifespan that
opens the server's state (listener, pool, background rounds) before the first request and closes it after
the last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from . import console, problems
from .middleware import BodyLimit, SecurityHeaders
from .routes import (
    changes,
    config,
    docs,
    drafts,
    events,
    exchange,
    fleet,
    health,
    principals,
    schedules,
    stream,
    webhooks,
)
from .settings import ServerSettings
from .sse import StreamFirst
from .state import ServerState

PREFIX = "/api/v1"


def create_app(settings: ServerSettings) -> FastAPI:
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starlette.concurrency import run_in_threadpool

        await state.hub.start()  # first: the listener's readings are handed to this loop
        await run_in_threadpool(state.open)
        try:
            yield
        finally:
            await state.hub.stop()  # stream clients end first, or a graceful shutdown would wait for them
            await run_in_threadpool(state.close)

    app = FastAPI(title="walltrack-config", version=__version__, lifespan=lifespan,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None,
                  description="WallTrack's settings: read them, draft and edit, activate, roll back, audit.")
    app.state.server = state
    for module in (config, drafts, exchange, fleet, principals, stream, changes, schedules, webhooks, events):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(health.router, prefix=PREFIX)
    app.include_router(health.router, include_in_schema=False)  # where probes usually look, too
    app.include_router(docs.router)
    console.install(app)  # the operator's pages at /
    problems.install(app)
    app.add_middleware(BodyLimit, limit=settings.body_limit)
    app.add_middleware(SecurityHeaders, tls=settings.tls)  # outermost: every answer gets them, a 413 too
    app.add_middleware(StreamFirst, state=state)  # the event stream, ahead of the rest (sse.py)
    return app
