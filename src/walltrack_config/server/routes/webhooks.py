"""Webhooks (V14, admin): who is told of each change event, and what came of each delivery.

A webhook's secret signs every delivery (X-Walltrack-Signature: sha256=HMAC(secret, "<timestamp>.<body>"));
it is in the answer that creates the webhook only, never again. Deliveries are sent by the servers' background
rounds, retried with backoff, and never hold back the change they tell of.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ... import webhooks
from ..deps import Admin, Connection
from ..schemas import DeliveryOut, DeliveryStatus, NewWebhookOut, WebhookIn, WebhookOut

router = APIRouter(tags=["webhooks"])

NamePath = Annotated[str, Path(max_length=200, description="The webhook's name.")]


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(who: Admin, conn: Connection) -> list[dict[str, Any]]:
    """Every webhook, without its secret."""
    return [h.json() for h in webhooks.webhooks(conn)]


@router.post("/webhooks", response_model=NewWebhookOut, status_code=201, responses={
    409: {"description": "A webhook of that name exists already."},
    422: {"description": "A value the rules refuse (name, url, events, format, secret), naming the field."}})
def add_webhook(body: WebhookIn, who: Admin, conn: Connection) -> dict[str, Any]:
    """A new webhook; its signing secret (given, or made when omitted) is in this answer only, never again."""
    hook, secret = webhooks.add(conn, body.name, body.url, events=list(body.events), secret=body.secret,
                                format=body.format, actor=who.actor)
    return {**hook.json(), "secret": secret}


@router.delete("/webhooks/{name}", status_code=204, responses={404: {"description": "No such webhook."}})
def remove_webhook(name: NamePath, who: Admin, conn: Connection) -> Response:
    """Remove a webhook: nothing more is sent to it (its past deliveries stay listed)."""
    webhooks.remove(conn, name, actor=who.actor)
    return Response(status_code=204)


@router.get("/webhooks/deliveries", response_model=list[DeliveryOut])
def list_deliveries(who: Admin, conn: Connection,
                    webhook: Annotated[str | None, Query(max_length=200, description="Only this webhook's.")] = None,
                    status: DeliveryStatus | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Deliveries, newest first: to whom, which event, how many attempts, the receiver's last answer."""
    return [d.json() for d in webhooks.deliveries(conn, webhook=webhook, status=status, limit=limit)]
