"""The overview (every domain at a glance, with the fleet), a domain's page, and the page's live feed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import fields, fleet, lifecycle
from ...domains import DOMAINS
from ...lifecycle import Activation, ConfigRow
from ..deps import server
from .routing import page_router
from .web import PageReader, render

router = page_router()


@dataclass(frozen=True)
class DomainCard:
    domain: str
    active: ConfigRow
    activation: Activation | None
    drafts: list[ConfigRow]
    clients: int  # live clients following this domain
    current: int  # of them, how many applied its current activation
    stale: int


def _cards(conn: Any) -> tuple[list[DomainCard], list[fleet.FleetClient], dict[str, int]]:
    clients = fleet.clients(conn)
    now = fleet.current(conn)
    cards = []
    for domain in DOMAINS:
        active = lifecycle.active_row(conn, domain)
        following = [c for c in clients if domain in c.domains]
        live = [c for c in following if not c.stale]
        cards.append(DomainCard(
            domain, active, lifecycle.last_activation(conn, domain, active.id), lifecycle.drafts(conn, domain),
            len(live), sum(1 for c in live if c.lag.get(domain) == 0), len(following) - len(live)))
    return cards, clients, now


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, who: PageReader) -> Response:
    def read() -> tuple[list[DomainCard], list[fleet.FleetClient], dict[str, int]]:
        with server(request).connection() as conn:
            return _cards(conn)

    cards, clients, current = await run_in_threadpool(read)
    return render(request, "overview.html", cards=cards, clients=clients, current=current,
                  title="Overview", live=server(request).hub.connected)


@router.get("/fleet", response_class=HTMLResponse)
async def fleet_page(request: Request, who: PageReader) -> Response:
    def read() -> tuple[list[fleet.FleetClient], dict[str, int]]:
        with server(request).connection() as conn:
            return fleet.clients(conn), fleet.current(conn)

    clients, current = await run_in_threadpool(read)
    return render(request, "fleet.html", clients=clients, current=current, title="Fleet")


@router.get("/domains/{domain}", response_class=HTMLResponse)
async def domain_page(request: Request, domain: str, who: PageReader) -> Response:
    lifecycle.model_of(domain)  # UnknownDomain (404) naming the real ones

    def read() -> tuple[list[ConfigRow], Activation | None]:
        with server(request).connection() as conn:
            rows = lifecycle.rows(conn, domain)
            active = next(r for r in rows if r.status == "active")
            return rows, lifecycle.last_activation(conn, domain, active.id)

    rows, activation = await run_in_threadpool(read)
    active = next(r for r in rows if r.status == "active")
    order = {"active": 0, "draft": 1, "default": 2, "archived": 3}
    rows.sort(key=lambda r: (order.get(r.status, 9), -r.updated_at.timestamp()))
    return render(request, "domain.html", domain=domain, active=active, activation=activation, rows=rows,
                  specs=fields.specs(domain), title=domain)
