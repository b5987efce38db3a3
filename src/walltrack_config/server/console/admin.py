"""Users and API tokens, for admins: add, change role, disable and enable users; create and revoke tokens; the
approvals each domain needs before a draft goes live (its policy).

A refusal (a taken name, a short password, the last admin) is shown on the admin page itself, with what was
typed kept (never a password), and nothing written. A new token's secret is shown once, on the page that
answers its creation: only its digest is kept, so no page can show it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import changes, principals
from ...domains import ROLES, Role
from ...errors import AlreadyExists, ConcurrentChange, FieldError, InvalidTransition, InvalidValue, NotFound
from ..deps import server
from .routing import page_router
from .web import Form, PageAdmin, redirect, render

router = page_router()

# No length cap here: FastAPI would refuse a long name as problem+json, not a page; the core answers NotFound.
NamePath = Annotated[str, Path()]
#: What the page can show inline; anything else (the database away) is the console's error page.
SHOWN = (AlreadyExists, ConcurrentChange, InvalidTransition, InvalidValue, NotFound)
NOTICES = {
    "added": "User {} added.",
    "role": "{}'s role changed.",
    "disabled": "{} disabled: they cannot sign in, and their sessions have ended.",
    "enabled": "{} enabled: they can sign in again.",
    "revoked": "Token {} revoked: it no longer works.",
    "policy": "The approval policy of {} changed.",
}


async def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    def read() -> tuple[list[principals.User], list[principals.Token], list[changes.Policy]]:
        with server(request).connection() as conn:
            return principals.users(conn), principals.tokens(conn, include_revoked=True), changes.policies(conn)

    users, tokens, policies = await run_in_threadpool(read)
    return render(request, "admin.html", status, title="Admin", users=users, tokens=tokens, roles=ROLES,
                  policies=policies, most=changes.MAX_APPROVALS, **context)


async def _change(request: Request, write: Callable[[Any], object], done: str, name: str,
                  to: str = "/admin", **kept: Any) -> Response:
    """Run one principals call; back to the admin page with a notice, or the page showing the refusal."""
    def run() -> None:
        with server(request).connection() as conn:
            write(conn)

    try:
        await run_in_threadpool(run)
    except SHOWN as exc:
        return await _page(request, exc.http_status, error=exc, **kept)
    server(request).auth.forget()  # as the API does: here at once, and the NOTIFY tells the other servers
    return redirect(f"{to}?{urlencode({'done': done, 'name': name})}" if to == "/admin" else to)


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, who: PageAdmin, done: str = "", name: str = "") -> Response:
    notice = NOTICES[done].format(name[:64]) if done in NOTICES else None
    return await _page(request, notice=notice)


@router.post("/admin/users", response_class=HTMLResponse)
async def add_user(request: Request, who: PageAdmin, form: Form) -> Response:
    name, role, password = form.get("name", "").strip(), form.get("role", ""), form.get("password", "")
    return await _change(request, lambda conn: principals.add_user(conn, name, role, password, actor=who.actor),
                         "added", name, new_user={"name": name, "role": role})


@router.post("/admin/users/{name}/role", response_class=HTMLResponse)
async def set_role(request: Request, name: NamePath, who: PageAdmin, form: Form) -> Response:
    role = form.get("role", "")
    # Demoting yourself ends your admin pages: the overview is where you can still go.
    own = name.lower() == who.name.lower() and role != Role.ADMIN.value
    return await _change(request, lambda conn: principals.set_role(conn, name, role, actor=who.actor), "role",
                         name, to="/" if own else "/admin")


@router.post("/admin/users/{name}/disable", response_class=HTMLResponse)
async def disable_user(request: Request, name: NamePath, who: PageAdmin, form: Form) -> Response:
    return await _change(request, lambda conn: principals.disable_user(conn, name, actor=who.actor), "disabled",
                         name)


@router.post("/admin/users/{name}/enable", response_class=HTMLResponse)
async def enable_user(request: Request, name: NamePath, who: PageAdmin, form: Form) -> Response:
    return await _change(request, lambda conn: principals.enable_user(conn, name, actor=who.actor), "enabled", name)


@router.post("/admin/tokens", response_class=HTMLResponse)
async def create_token(request: Request, who: PageAdmin, form: Form) -> Response:
    name, role, lifetime = form.get("name", "").strip(), form.get("role", ""), form.get("lifetime", "").strip()
    kept = {"new_token": {"name": name, "role": role, "lifetime": lifetime}}

    def run() -> tuple[principals.Token, str]:
        expires = principals.parse_duration(lifetime) if lifetime else None
        with server(request).connection() as conn:
            return principals.create_token(conn, name, role, actor=who.actor, expires=expires)

    try:
        token, secret = await run_in_threadpool(run)
    except SHOWN as exc:
        return await _page(request, exc.http_status, error=exc, **kept)
    return render(request, "token_created.html", title="Token created", token=token, secret=secret)


@router.post("/admin/tokens/{name}/revoke", response_class=HTMLResponse)
async def revoke_token(request: Request, name: NamePath, who: PageAdmin, form: Form) -> Response:
    return await _change(request, lambda conn: principals.revoke_token(conn, name, actor=who.actor), "revoked",
                         name)


@router.post("/admin/policies/{domain}", response_class=HTMLResponse)
async def set_policy(request: Request, domain: NamePath, who: PageAdmin, form: Form) -> Response:
    text, reason = form.get("approvals", "").strip(), form.get("reason", "").strip()[:2000] or None

    def write(conn: Any) -> object:
        if not (text.isascii() and text.isdigit() and len(text) <= 2):
            raise InvalidValue(changes.POLICIES, [FieldError(
                "approvals", f"a whole number from 0 to {changes.MAX_APPROVALS}, not {text[:20]!r}")])
        return changes.set_policy(conn, domain, int(text), actor=who.actor, reason=reason)

    return await _change(request, write, "policy", domain, policy={"domain": domain, "approvals": text})
