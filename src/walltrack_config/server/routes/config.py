"""Reads: the active settings from memory (ETag, 304), rows and diffs from the database."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ... import lifecycle
from ...diff import diff_rows
from ...domains import StatusName
from ...errors import NotFound
from ..deps import Connection, Reader, server
from ..schemas import ConfigOut, DiffOut, LiveRowOut, RowOut
from ._shared import (
    ROW_NOT_FOUND,
    DomainPath,
    RefPath,
    Responses,
    changes_json,
    domain_of,
    matches,
    ref_json,
    row_json,
    with_etag,
)

router = APIRouter(tags=["settings"])

NOT_MODIFIED: Responses = {304: {"description": "Not modified: your copy (If-None-Match) is current."}}


def _cached(request: Request, etag: str, body: bytes) -> Response:
    if matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


@router.get("/config", response_model=None, responses={200: {"model": ConfigOut}, **NOT_MODIFIED})
async def all_active(request: Request, who: Reader) -> Response:
    """Every domain's active settings, from this server's memory; the ETag is the activation sequence."""
    view = server(request).snapshot.view
    return _cached(request, view.etag, view.body)


@router.get("/config/{domain}", response_model=None,
            responses={200: {"model": LiveRowOut}, **NOT_MODIFIED, **ROW_NOT_FOUND})
async def domain_active(request: Request, domain: DomainPath, who: Reader) -> Response:
    """One domain's active settings, from memory; the ETag is its activation sequence."""
    view = server(request).snapshot.view
    domain_of(domain)
    if domain not in view.rows:
        why = view.refused.get(domain, "not loaded yet; try again")
        raise NotFound(lifecycle.table_of(domain), message=f"{domain}'s active settings cannot be served: {why}")
    return _cached(request, view.domain_etag(domain), view.domain_bodies[domain])


@router.get("/config/{domain}/rows", response_model=list[RowOut], responses=ROW_NOT_FOUND)
def list_rows(domain: DomainPath, who: Reader, conn: Connection,
              status: Annotated[StatusName | None, Query(description="Only rows of this status.")] = None,
              ) -> list[dict[str, Any]]:
    """The domain's rows, newest first."""
    return [row_json(r) for r in lifecycle.rows(conn, domain_of(domain), status)]


@router.get("/config/{domain}/rows/{ref}", response_model=RowOut, responses=ROW_NOT_FOUND)
def get_row(domain: DomainPath, ref: RefPath, who: Reader, conn: Connection, response: Response) -> dict[str, Any]:
    """One row, by id, id prefix (6+), exact name, or active/default/draft/archived; its ETag is its version."""
    row = lifecycle.resolve(conn, domain_of(domain), ref)
    with_etag(response, row)
    return row_json(row)


@router.get("/config/{domain}/diff", response_model=DiffOut, responses=ROW_NOT_FOUND)
def diff(domain: DomainPath, who: Reader, conn: Connection,
         from_: Annotated[str, Query(alias="from", max_length=200)] = "active",
         to: Annotated[str, Query(max_length=200)] = "draft") -> dict[str, Any]:
    """What differs between two rows, field by field (default: the active row against the only draft)."""
    old, new = lifecycle.resolve(conn, domain_of(domain), from_), lifecycle.resolve(conn, domain, to)
    return {"domain": domain, "from": ref_json(old), "to": ref_json(new), "changes": changes_json(diff_rows(old, new))}
