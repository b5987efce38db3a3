"""Liveness and readiness, for a load balancer or an orchestrator: no credentials needed, nothing secret said."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..deps import server
from ..problems import problem
from ..schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    """The process is alive (it answers); says nothing of the database."""
    return {"status": "ok", "detail": "alive"}


@router.get("/readyz", response_model=HealthOut, responses={503: {"description": "Not ready, and why."}})
async def readyz(request: Request) -> JSONResponse | dict[str, str]:
    """Ready for writes: the database answers, its schema is current, and this process is listening."""
    ok, detail = await run_in_threadpool(server(request).ready)
    if not ok:
        return problem(503, detail, "NotReady")
    return {"status": "ready", "detail": detail}
