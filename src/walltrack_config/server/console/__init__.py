"""The operator's console at /: server-rendered pages over the same core calls, identities and stream as the API.

Every action is a plain form post (the pages work without JavaScript); static/console.js only improves them:
live updates from /events, inline checks of typed inputs.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import activation, admin, drafts, exchange, history, live, overview, requests, schedules, signin, webhooks
from .web import HERE


def install(app: FastAPI) -> None:
    for module in (signin, overview, live, drafts, activation, requests, schedules, history, exchange, admin,
                   webhooks):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
