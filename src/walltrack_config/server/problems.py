"""Every refusal as application/problem+json (RFC 9457), translated here and nowhere else.

A ConfigError brings its own status (errors.py); FastAPI's validation errors are 400 (unreadable body)
or 422 (values of the wrong type or range); a route or method that does not exist is 404 or 405; the
database going away is 503. Each problem names the ConfigError class it comes from and, where there is
one, the field and the rule.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import (
    AmbiguousRow,
    ApprovalRequired,
    AuthenticationFailed,
    ConfigError,
    DatabaseUnavailable,
    EmbeddedServerError,
    InvalidDatabaseUrl,
    InvalidImport,
    InvalidTransition,
    InvalidValue,
    RateLimited,
    UnexpectedReply,
    UnreadableRow,
)

log = logging.getLogger("walltrack_config.server")

MEDIA_TYPE = "application/problem+json"


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(status: int, detail: str, error: str, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body = {"type": f"urn:walltrack-config:problem:{_kebab(error)}", "title": HTTPStatus(status).phrase,
            "status": status, "detail": detail, "error": error}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


#: Their messages hold what libpq said: host, port, database user. The log keeps it; an answer does not.
UNSAID = (DatabaseUnavailable, UnexpectedReply, EmbeddedServerError, InvalidDatabaseUrl)
UNAVAILABLE = "the database is unavailable; try again shortly (readyz says when it is back)"


def config_problem(exc: ConfigError) -> JSONResponse:
    if isinstance(exc, UNSAID):
        log.warning("answered 503: %s", exc)
        return problem(exc.http_status, UNAVAILABLE, type(exc).__name__)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidValue | UnreadableRow):
        extra["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        extra["field"] = exc.errors[0].field if len(exc.errors) == 1 else None
    if isinstance(exc, InvalidImport):
        extra["errors"] = [{"field": e.field, "message": e.message} for e in exc.problems]
    if isinstance(exc, InvalidTransition):
        extra["hint"] = exc.hint
    if isinstance(exc, AmbiguousRow):
        extra["candidates"] = exc.candidates
    if isinstance(exc, ApprovalRequired):  # what is missing, for a client to act on without parsing `detail`
        extra.update(required=exc.required, given=exc.given, request_id=exc.request_id)
    rule = getattr(exc, "rule", None)
    if isinstance(rule, str):
        extra["rule"] = rule
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="walltrack-config"'
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        extra["retry_after"] = exc.retry_after
    return problem(exc.http_status, str(exc), type(exc).__name__, headers or None, **extra)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    unreadable = False
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        unreadable = unreadable or error.get("type") == "json_invalid"
        errors.append({"field": ".".join(loc[1:]) or loc[0] if loc else "?", "in": loc[0] if loc else "?",
                       "message": error.get("msg", "invalid")})
    status = 400 if unreadable else 422
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(status, detail, "InvalidRequest", errors=errors, field=errors[0]["field"] if errors else None)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, "HTTPError", dict(exc.headers) if exc.headers else None)


def _config(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    return config_problem(exc)


def _database(request: Request, exc: Exception) -> JSONResponse:
    """A database failure the core did not translate (the server went away mid-request): 503, never 500."""
    import psycopg

    if isinstance(exc, psycopg.DataError):  # a value PostgreSQL cannot take (a NUL in a text)
        return problem(400, f"a value the database cannot take: {' '.join(str(exc).split())}", "InvalidRequest")
    return config_problem(DatabaseUnavailable("the database", " ".join(str(exc).split())))


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem", "type": "object", "description": "A refusal (RFC 9457), as every 4xx and 5xx answer has it.",
    "required": ["type", "title", "status", "detail", "error"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "error": {"type": "string", "description": "The ConfigError class (or InvalidRequest, HTTPError, NotReady)."},
        "field": {"type": "string"}, "hint": {"type": "string"}, "rule": {"type": "string"},
        "retry_after": {"type": "integer"},
        "required": {"type": "integer", "description": "ApprovalRequired: approvals the domain's policy asks for."},
        "given": {"type": "integer", "description": "ApprovalRequired: approvals the pending request has."},
        "request_id": {"type": "string", "description": "ApprovalRequired: the pending request, if there is one."},
        "candidates": {"type": "array", "items": {}},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}, "in": {"type": "string"}}}},
    },
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as the server answers: every 4xx and 5xx it declares is a Problem as
    application/problem+json (FastAPI would declare its own 422 body, as application/json, which we never send)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    response["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Problem"] = PROBLEM_SCHEMA
    return schema


def install(app: FastAPI) -> None:
    import psycopg

    app.add_exception_handler(ConfigError, _config)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(psycopg.Error, _database)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
