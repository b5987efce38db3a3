"""The change events (V14, reader): what the approvals, schedules and activations did, in order; the same
events the webhooks send. Poll with ?after=<the last seq seen> for what came since."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ... import events
from ...domains import DomainName
from ..deps import Connection, Reader
from ..schemas import EventKind, EventOut

router = APIRouter(tags=["events"])


@router.get("/events", response_model=list[EventOut])
def list_events(who: Reader, conn: Connection,
                after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description=(
                    "Only the events after this seq (a cursor: the last seq you saw). Omitted: the latest "
                    "`limit` events. Either way oldest first."))] = None,
                kind: Annotated[list[EventKind] | None, Query(description="Only these kinds (repeat it).")] = None,
                domain: DomainName | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Change events in the order they happened."""
    return [e.json() for e in events.events(conn, after=after, kinds=kind, domain=domain, limit=limit)]
