"""What several route modules need: rows as JSON, ETags, the domain path parameter."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path, Request, Response

from ... import lifecycle
from ...diff import Change
from ...errors import FieldError, InvalidValue, PreconditionRequired
from ...lifecycle import ConfigRow
from ...models import plain
from ..deps import server

if TYPE_CHECKING:
    import psycopg

DomainPath = Annotated[str, Path(description="trading, scoring, discovery, cluster, risk, exit or api.",
                                 max_length=40)]
RefPath = Annotated[str, Path(description="A row: id, id prefix (6+) or exact name; or active, default, draft, "
                                          "archived.", max_length=200)]

Responses = dict[int | str, dict[str, Any]]
ROW_NOT_FOUND: Responses = {404: {"description": "No such domain or row (application/problem+json)."}}


def row_json(row: ConfigRow) -> dict[str, Any]:
    return {
        "domain": row.domain, "id": str(row.id), "name": row.name, "status": row.status, "version": row.version,
        "description": row.description, "created_at": row.created_at, "updated_at": row.updated_at,
        "created_by": row.created_by, "updated_by": row.updated_by, "settings": plain(row.settings),
        "problems": [{"field": p.field, "message": p.message} for p in row.problems],
    }


def ref_json(row: ConfigRow) -> dict[str, Any]:
    return {"id": str(row.id), "name": row.name, "status": row.status, "version": row.version}


def changes_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [{"field": c.field, "old": plain(c.old), "new": plain(c.new)} for c in changes]


def domain_of(domain: str) -> str:
    """The domain, or UnknownDomain (404) naming the real ones."""
    lifecycle.model_of(domain)
    return domain


def version_etag(row: ConfigRow) -> str:
    return f'"{row.version}"'


def with_etag(response: Response, row: ConfigRow) -> None:
    response.headers["ETag"] = version_etag(row)


VERSION = re.compile(r'"?([0-9]{1,10})"?')  # ASCII digits only: str.isdigit() takes '²', which int() refuses


def if_match(request: Request, table: str, what: str, *, required: bool = True,
             given: int | None = None) -> int | None:
    """The version an If-Match header names (`3` or `"3"`), else the one `given` in the body; 428 if neither
    and required. A weak tag (W/) or `*` cannot stand for the version reviewed, and a header that disagrees
    with the body is refused rather than one silently winning."""
    header = request.headers.get("if-match")
    if header is None:
        if given is None and required:
            raise PreconditionRequired(what)
        return given
    found = VERSION.fullmatch(header.strip())
    if found is None or int(found[1]) > 2**31 - 1:
        raise InvalidValue(table, [FieldError("If-Match", f"{header[:40]!r} is not a row version: send the version "
                                                          "you reviewed, as 3 or \"3\"")])
    version = int(found[1])
    if given is not None and given != version:
        raise InvalidValue(table, [FieldError("If-Match", f"says version {version}, the body's expected_version "
                                                          f"{given}; send one")])
    return version


def matches(request: Request, etag: str) -> bool:
    """Whether If-None-Match names this ETag (or *): the client's copy is current."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def live(request: Request, response: Response, conn: psycopg.Connection[Any], rows: list[ConfigRow]) -> None:
    """Wait until this process serves the rows just made live, so the caller's next read shows them.

    `X-Live: pending` says it did not within the server's live_wait (the change is committed all the same).
    """
    state = server(request)
    deadline = time.monotonic() + state.settings.live_wait
    for row in rows:
        made = lifecycle.last_activation(conn, row.domain, row.id)
        wait = max(0.0, deadline - time.monotonic())
        if made is not None and not state.snapshot.wait_for(row.domain, made.seq, wait):
            response.headers["X-Live"] = "pending"
            return
