"""What every console page shares: the signed-in operator (a session cookie), CSRF on every form, rendering.

The cookie holds a session token from the API's own sign-in (principals.open_session), so a page and the API
see one identity, one expiry and one revocation. It is HttpOnly and SameSite=Strict (Secure under TLS).
Each form carries a CSRF token derived from the session's secret (HMAC), so any server on the database can
check it and nothing is stored for it; the sign-in form, before any session, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...domains import DOMAINS, Role
from ...errors import AuthenticationFailed, ConfigError, Forbidden
from ...principals import Principal
from ..deps import client_address, server

if TYPE_CHECKING:
    from jinja2 import Environment

SESSION_COOKIE = "wtc_session"
LOGIN_COOKIE = "wtc_login"  # the sign-in form's double-submit CSRF token
CSRF_FIELD = "csrf"
HERE = Path(__file__).parent
# Pages load their own script and stylesheet only; forms post to this origin only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

# The API's no-referrer would make a browser post this page's forms with "Origin: null", which same_origin
# refuses: a page sends its origin to itself, and nothing to other sites.
PAGE_HEADERS = {"content-security-policy": CSP, "referrer-policy": "same-origin"}


class SignedOut(Exception):
    """No valid session: the page answers with the sign-in form (a redirect)."""


class BadForm(Exception):
    """A form without the right CSRF token, or posted from another origin: refused, nothing done."""


_environment: Environment | None = None


def environment() -> Environment:
    global _environment
    if _environment is None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        from . import filters

        env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                          trim_blocks=True, lstrip_blocks=True)
        env.filters.update(filters.FILTERS)
        env.globals.update(domains=DOMAINS)
        _environment = env
    return _environment


def session_token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and len(token) <= 200 else None


def secure(request: Request) -> bool:
    """Cookies only over HTTPS: served with TLS, or behind a trusted proxy that says the browser used https
    (uvicorn sets the scheme from X-Forwarded-Proto only for --forwarded-allow-ips)."""
    return server(request).settings.tls or request.url.scheme == "https"


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"walltrack-console-csrf", hashlib.sha256).hexdigest()[:40]


async def viewer(request: Request) -> Principal:
    """The signed-in user, from the session cookie; SignedOut when there is none, or it ended."""
    token = session_token(request)
    if token is None:
        raise SignedOut
    state = server(request)
    who = state.auth.known(token)
    if who is None:
        try:
            who = await run_in_threadpool(state.auth.check, token, client_address(request))
        except AuthenticationFailed:
            raise SignedOut from None
    if who.kind != "user":  # an API token pasted into a cookie is not a session
        raise SignedOut
    request.state.csrf = csrf_for(token)
    request.state.who = who
    return who


Viewer = Annotated[Principal, Depends(viewer)]


def role_page(role: Role, action: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def allowed(who: Viewer) -> Principal:
        if not who.allows(role):
            raise Forbidden(who.actor, str(who.role), role.value, action)
        return who

    return allowed


PageReader = Annotated[Principal, Depends(role_page(Role.READER, "reading settings"))]
PageEditor = Annotated[Principal, Depends(role_page(Role.EDITOR, "changing drafts"))]
PageOperator = Annotated[Principal, Depends(role_page(Role.OPERATOR, "making settings live"))]
PageAdmin = Annotated[Principal, Depends(role_page(Role.ADMIN, "managing users and tokens"))]


def same_origin(request: Request) -> bool:
    """A browser names where a form was posted from; another site's page is refused (SameSite aside)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None  # no header at all: not a browser's cross-site post (those carry Origin)
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def form(request: Request) -> dict[str, str]:
    """The posted fields (text only), once the CSRF token and the origin are checked; BadForm otherwise."""
    data = await request.form(max_files=1, max_fields=400)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    expected = getattr(request.state, "csrf", None) or request.cookies.get(LOGIN_COOKIE)
    sent = fields.pop(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()) or not same_origin(request):
        raise BadForm
    return fields


Form = Annotated[dict[str, str], Depends(form)]


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    who: Principal | None = getattr(request.state, "who", None)
    body = environment().get_template(template).render(
        request=request, who=who, csrf=getattr(request.state, "csrf", ""), path=request.url.path,
        can=_abilities(who), **context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _abilities(who: Principal | None) -> Mapping[str, bool]:
    roles = {"read": Role.READER, "edit": Role.EDITOR, "activate": Role.OPERATOR, "admin": Role.ADMIN}
    return {k: who is not None and who.allows(r) for k, r in roles.items()}


def redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303)


def to_sign_in(request: Request) -> Response:
    """The sign-in page, coming back here afterwards (a GET only: a form is never replayed)."""
    back = request.url.path if request.method == "GET" else "/"
    if request.url.query and request.method == "GET":
        back += "?" + request.url.query
    response = redirect(f"/login?next={quote(back, safe='')}" if back != "/" else "/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def refused(request: Request, exc: ConfigError | BadForm) -> HTMLResponse:
    """A refusal as a page (the API's problem+json says the same; here it is read by a person)."""
    if isinstance(exc, BadForm):
        return render(request, "error.html", 403, title="Form refused",
                      message="This form was not sent from this console's own page (or it expired). "
                              "Nothing was changed. Go back, reload the page and try again.")
    from ..problems import UNAVAILABLE, UNSAID

    message = UNAVAILABLE if isinstance(exc, UNSAID) else str(exc)
    return render(request, "error.html", exc.http_status, title=type(exc).__name__, message=message, error=exc)


def invalid(request: Request, exc: Any) -> HTMLResponse:
    """A request whose query or form did not fit the page (a RequestValidationError), named field by field."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return failed(request, 422, "; ".join(problems) or "the request did not fit this page")


def failed(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, title="Request refused",
                  message=f"{message}. Nothing was changed.")


def new_login_token() -> str:
    return secrets.token_urlsafe(24)
