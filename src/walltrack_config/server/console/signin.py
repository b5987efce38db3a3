"""Signing in and out of the console, and the first-run setup of the first admin."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import principals
from ...errors import AuthenticationFailed, InvalidValue, RateLimited
from ..deps import client_address, server
from .routing import page_router
from .web import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Form,
    Viewer,
    csrf_for,
    new_login_token,
    redirect,
    render,
    secure,
    session_token,
)

router = page_router()

Next = Annotated[str, Query(max_length=500)]


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never '//evil.example' or 'https://…' (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _sign_in_form(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    token = request.cookies.get(LOGIN_COOKIE)
    fresh = not token or len(token) > 100
    if fresh:
        token = new_login_token()
    request.state.csrf = token
    response = render(request, "login.html", status, **context)
    if fresh:
        response.set_cookie(LOGIN_COOKIE, token or "", httponly=True, samesite="strict", path="/",
                            secure=secure(request))
    return response


def _signed_in(request: Request, token: str, to: str) -> Response:
    response = redirect(to)
    settings = server(request).settings
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/", secure=secure(request),
                        max_age=int(settings.session_ttl.total_seconds()))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.get("/login")
async def login_page(request: Request, next: Next = "/") -> Response:
    if session_token(request) is not None:
        token = session_token(request) or ""
        if server(request).auth.known(token) is not None:
            return redirect(_safe_next(next))
    return _sign_in_form(request, next=_safe_next(next))


@router.post("/login")
async def sign_in(request: Request, fields: Form) -> Response:
    name, password = fields.get("name", ""), fields.get("password", "")
    to = _safe_next(fields.get("next"))
    state = server(request)
    try:
        _, token = await run_in_threadpool(state.auth.login, name, password, client_address(request),
                                           state.settings.session_ttl)
    except AuthenticationFailed:
        return _sign_in_form(request, 401, error="Wrong name or password.", name=name, next=to)
    except RateLimited as exc:
        return _sign_in_form(request, 429, error=f"Too many failed sign-ins: try again in {exc.retry_after} s.",
                             name=name, next=to)
    return _signed_in(request, token, to)


@router.post("/logout")
async def sign_out(request: Request, who: Viewer, fields: Form) -> Response:
    state = server(request)

    def end() -> None:
        with state.connection() as conn:
            principals.logout(conn, who.token_id)

    await run_in_threadpool(end)
    state.auth.forget(json.dumps({"kind": "session", "id": str(who.token_id)}))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/setup")
async def setup_page(request: Request, code: Annotated[str, Query(max_length=100)] = "") -> Response:
    problem = server(request).setup.problem(code, client_address(request))
    if problem is not None:
        return render(request, "error.html", 403, title="No setup here", message=problem)
    request.state.csrf = csrf_for(code)
    return render(request, "setup.html", code=code)


@router.post("/setup")
async def setup(request: Request) -> Response:
    data = await request.form(max_files=0, max_fields=10)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    code = fields.get("code", "")
    request.state.csrf = csrf_for(code)  # the code is the secret this form is bound to
    state = server(request)
    if fields.get("csrf") != csrf_for(code):
        return render(request, "error.html", 403, title="Form refused", message="Reload the setup link.")
    problem = state.setup.use(code, client_address(request))
    if problem is not None:
        return render(request, "error.html", 403, title="No setup here", message=problem)
    name, password = fields.get("name", ""), fields.get("password", "")
    if password != fields.get("again", ""):
        state.setup.give_back()
        return render(request, "setup.html", 422, code=code, name=name, error="The two passwords differ.")

    def first_admin() -> str:
        with state.connection() as conn:
            principals.add_first_admin(conn, name, password)
        _, token = state.auth.login(name, password, client_address(request), state.settings.session_ttl)
        return token

    try:
        token = await run_in_threadpool(first_admin)
    except InvalidValue as exc:
        state.setup.give_back()
        return render(request, "setup.html", 422, code=code, name=name, error=str(exc), errors=exc.errors)
    return _signed_in(request, token, "/")
