"""How values read on a page: numbers as stored (no float noise), times in UTC to the second, lists of tiers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...models import plain


def value(v: object) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v.is_finite() else str(v)
    if isinstance(v, float):  # plain() gives floats where exact: 10.0 reads as the 10 it was stored as
        return value(Decimal(repr(v)))
    if isinstance(v, list | tuple):
        return "; ".join(value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {value(x)}" for k, x in v.items())
    got = plain(v)
    if isinstance(got, dict):
        return ", ".join(f"{k} {value(x)}" for k, x in got.items())
    return str(got)


def behind(client: Any) -> dict[str, str]:
    """A client's domains that are not current: how many activations behind, or not applied at all yet."""
    out = {}
    for domain in client.domains:
        lag = client.lag.get(domain)
        if lag is None:
            out[domain] = "not applied"
        elif lag > 0:
            out[domain] = f"{lag} behind"
    return out


def when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def short(ident: object) -> str:
    return str(ident)[:8]


FILTERS: dict[str, Any] = {"value": value, "behind": behind, "when": when, "iso": iso, "short": short}
