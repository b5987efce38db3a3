"""Signing in (a session token for a user), who am I, and the admin's users and tokens."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from ... import principals
from ...credentials import password_problems
from ...errors import FieldError, InvalidTransition, InvalidValue
from ...principals import Principal
from ..deps import Admin, Caller, Connection, client_address, server
from ..schemas import (
    LoginIn,
    NewTokenOut,
    PrincipalOut,
    SessionOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatchIn,
)

router = APIRouter(tags=["principals"])

NamePath = Annotated[str, Path(max_length=200)]


def principal_json(who: Principal) -> dict[str, Any]:
    return {"kind": who.kind, "name": who.name, "role": str(who.role), "actor": who.actor, "expires_at": who.expires_at}


@router.post("/login", response_model=SessionOut,
             responses={401: {"description": "Wrong name or password."}, 429: {"description": "Too many failures."}})
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    """A user's name and password for a session token (a bearer token that expires)."""
    state = server(request)
    who, token = await run_in_threadpool(state.auth.login, body.name, body.password, client_address(request),
                                         state.settings.session_ttl)
    return {"token": token, "expires_at": who.expires_at, "principal": principal_json(who)}


@router.post("/logout", status_code=204)
def logout(request: Request, who: Caller, conn: Connection) -> Response:
    """End the session this request was made with (an API token is revoked by an admin: DELETE /tokens/{name})."""
    if who.kind != "user":
        raise InvalidTransition("walltrack_auth.api_tokens", "an API token has no session to end",
                                "an admin revokes it with DELETE /api/v1/tokens/{name}")
    principals.logout(conn, who.token_id)
    # Here at once (the NOTIFY tells the other servers): this session only.
    server(request).auth.forget(json.dumps({"kind": "session", "id": str(who.token_id)}))
    return Response(status_code=204)


@router.get("/whoami", response_model=PrincipalOut)
async def whoami(who: Caller) -> dict[str, Any]:
    """The principal this request runs as, and what the audit trail records for it."""
    return principal_json(who)


@router.get("/users", response_model=list[UserOut])
def list_users(who: Admin, conn: Connection) -> list[dict[str, object]]:
    return [u.columns() for u in principals.users(conn)]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: UserIn, who: Admin, conn: Connection) -> dict[str, object]:
    return principals.add_user(conn, body.name, body.role, body.password, actor=who.actor).columns()


@router.patch("/users/{name}", response_model=UserOut)
def change_user(request: Request, name: NamePath, body: UserPatchIn, who: Admin, conn: Connection) -> dict[str, object]:
    """Change a user's role, password, or whether they may sign in: all of it or nothing, each change audited."""
    if body.password is not None and (problems := password_problems(body.password)):
        raise InvalidValue("walltrack_auth.users", problems)
    if body.role is None and body.password is None and body.disabled is None:
        raise InvalidValue("walltrack_auth.users", [FieldError("role", "nothing to change: give role, password "
                                                                       "or disabled")])
    with conn.transaction():  # each call below is a savepoint in this one transaction
        user = principals.get_user(conn, name)
        if body.role is not None:
            user = principals.set_role(conn, name, body.role, actor=who.actor)
        if body.password is not None:
            user = principals.set_password(conn, name, body.password, actor=who.actor)
        if body.disabled is not None:
            change = principals.disable_user if body.disabled else principals.enable_user
            user = change(conn, name, actor=who.actor)
    server(request).auth.forget()
    return user.columns()


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(who: Admin, conn: Connection, include_revoked: bool = False) -> list[dict[str, object]]:
    return [t.columns() for t in principals.tokens(conn, include_revoked=include_revoked)]


@router.post("/tokens", response_model=NewTokenOut, status_code=201)
def create_token(body: TokenIn, who: Admin, conn: Connection) -> dict[str, object]:
    """A new API token; the token itself is in this answer only, never again."""
    expires = None if body.expires is None else principals.parse_duration(body.expires)
    token, secret = principals.create_token(conn, body.name, body.role, actor=who.actor, expires=expires)
    return {**token.columns(), "token": secret}


@router.delete("/tokens/{name}", response_model=TokenOut)
def revoke_token(request: Request, name: NamePath, who: Admin, conn: Connection) -> dict[str, object]:
    token = principals.revoke_token(conn, name, actor=who.actor)
    server(request).auth.forget()  # here at once; the NOTIFY tells the other servers
    return token.columns()
