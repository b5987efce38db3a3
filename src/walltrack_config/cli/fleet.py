"""`fleet`: the live clients, what each applied and how far behind it is; and the --wait-applied of activate
and rollback, which waits until every live client applied a change."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import Options, app, connect_migrated

if TYPE_CHECKING:
    import psycopg

    from ..errors import NotApplied
    from ..fleet import FleetClient

WaitAppliedOpt = Annotated[bool, typer.Option(
    "--wait-applied", help="Then wait until every live client applied it (exit 1 naming those that did not).")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0, max=3600, metavar="SECONDS", help="How long --wait-applied waits.")]


@app.command()
def fleet(ctx: typer.Context) -> None:
    """The live clients (bots), what each applied per domain and how many activations behind it is."""
    from .. import fleet as core
    from .. import schema
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts, schema.FLEET) as conn:
        current = core.current(conn)
        found = core.clients(conn)
        now = _database_now(conn)
    if opts.json:
        return render.emit_json({"current": current, "clients": [c.json() for c in found]})
    if not found:
        return render.lines("no live client has reported (a LiveConfig reports once it runs)")
    followed = [d for d in current if any(d in c.domains for c in found)]
    render.table(("name", "transport", "host", "pid", "version", *followed, "last seen", "state"),
                 [(c.name, c.transport, c.host, str(c.pid), c.version, *(_cell(c, d) for d in followed),
                   _ago(now, c.last_seen_at), "stale" if c.stale else "live") for c in found])
    live = [c for c in found if not c.stale]
    behind = [c for c in live if any(c.lag.get(d) for d in c.domains) or set(c.domains) - set(c.applied)]
    render.lines(f"{len(live)} live, {len(found) - len(live)} stale; {len(behind)} live behind; current activations: "
                 + ", ".join(f"{d} {a}" for d, a in current.items() if d in followed))


def _cell(client: FleetClient, domain: str) -> str:
    """What a client applied of a domain: the activation, and how many behind; '-' when it does not follow it."""
    if domain not in client.domains:
        return "-"
    if domain not in client.applied:
        return "?"
    lag = client.lag.get(domain, 0)
    return f"{client.applied[domain]}" + (f" ({lag} behind)" if lag else "")


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0.0, (now - then).total_seconds())
    if seconds < 120:
        return f"{seconds:.1f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _database_now(conn: psycopg.Connection[Any]) -> datetime:
    from .. import db

    return db.scalar(conn, "SELECT statement_timestamp()", None, datetime)


# -- --wait-applied ----------------------------------------------------------------------------------------------


def require_fleet(conn: psycopg.Connection[Any]) -> None:
    """Before anything is changed: --wait-applied needs V13."""
    from .. import schema

    schema.require(conn, schema.FLEET)


def wait_applied(conn: psycopg.Connection[Any], domain: str, activation: int, timeout: float) -> dict[str, Any]:
    """Wait on `conn` until every live client following `domain` applied `activation`, telling stderr how it goes.

    Returns what the JSON answer says of it (`complete`, and the clients `missing`); `not_applied` turns an
    incomplete one into the error the command ends with.
    """
    from .. import fleet as core
    from . import render

    started = time.monotonic()
    first: list[int] = []

    def progress(missing: list[FleetClient]) -> None:
        if not first:
            first.append(len(missing))
            if missing:
                render.lines(f"waiting up to {timeout:g} s for {len(missing)} live client(s) to apply {domain} "
                             f"activation {activation}", stderr=True)
        elif first[0]:
            render.lines(f"  {first[0] - len(missing)} of {first[0]} applied", stderr=True)

    missing = core.wait_applied(conn, domain, activation, timeout, progress=progress)
    elapsed = time.monotonic() - started
    following = core.live_count(conn, domain)
    stale = core.laggards(conn, domain, activation, stale=True)
    if stale:
        render.lines(f"not waited for: {len(stale)} stale client(s) following {domain}: "
                     + "; ".join(c.label() for c in stale), stderr=True)
    if not missing:
        render.lines(f"all {following} live client(s) applied {domain} activation {activation} in {elapsed:.1f} s"
                     if following else f"no live client follows {domain}: nothing to wait for", stderr=True)
    return {"activation": activation, "complete": not missing, "waited": round(elapsed, 3),
            "live": following, "missing": [c.json() for c in missing], "stale": [c.json() for c in stale]}


def not_applied(domain: str, applied: dict[str, Any], timeout: float) -> NotApplied | None:
    """NotApplied (exit 1) naming the clients that did not apply in time; None when every one did."""
    from ..errors import NotApplied

    missing = applied["missing"]
    if not missing:
        return None
    names = [f"{c['name']} ({c['host']}, pid {c['pid']})" for c in missing]
    return NotApplied(domain, applied["activation"], names, max(applied["live"], len(missing)), timeout)
