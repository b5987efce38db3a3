"""The routes' dependencies: the server's state, the caller (authenticated, with a role), a connection."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..credentials import MAX_TOKEN_LENGTH
from ..domains import Role
from ..errors import AuthenticationFailed, Forbidden
from ..principals import Principal

if TYPE_CHECKING:
    import psycopg

    from .state import ServerState



def server(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def bearer(request: Request) -> str:
    return bearer_token(request.headers.get("authorization"))


def bearer_token(header: str | None) -> str:
    """The token an Authorization header carries; AuthenticationFailed if there is none."""
    if not header:
        raise AuthenticationFailed("no credentials: send Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationFailed("send the token as Authorization: Bearer <token>")
    return token


async def caller(request: Request) -> Principal:
    """The principal the request's token belongs to: from memory when known, else checked in a worker thread."""
    return await authenticate(server(request), bearer(request), client_address(request))


async def authenticate(state: ServerState, token: str, address: str) -> Principal:
    known = state.auth.known(token)
    if known is not None:
        return known
    return await run_in_threadpool(state.auth.check, token, address)


Caller = Annotated[Principal, Depends(caller)]


def need(role: Role, action: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, if their role allows `action` (which needs `role`); Forbidden otherwise."""

    async def allowed(who: Caller) -> Principal:
        return require(who, role, action)

    return allowed


def require(who: Principal, role: Role, action: str) -> Principal:
    if not who.allows(role):
        raise Forbidden(who.actor, str(who.role), role.value, action)
    return who


Reader = Annotated[Principal, Depends(need(Role.READER, "reading settings"))]
Editor = Annotated[Principal, Depends(need(Role.EDITOR, "changing drafts"))]
Operator = Annotated[Principal, Depends(need(Role.OPERATOR, "making settings live"))]
Admin = Annotated[Principal, Depends(need(Role.ADMIN, "managing users and tokens"))]


def connection(request: Request) -> Iterator[psycopg.Connection[Any]]:
    with server(request).connection() as conn:
        yield conn


if TYPE_CHECKING:
    Conn = psycopg.Connection[Any]
else:
    Conn = Any
Connection = Annotated[Conn, Depends(connection)]
