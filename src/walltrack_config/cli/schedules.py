"""Scheduled activations: `schedule list|cancel|run`, and the parsing of `activate --at`.

`activate --at TIME` (cli/config.py) records a schedule; the server runs it when it is due, or, with no server,
`schedule run` from cron does (it also marks newly stale clients and sends the due webhook deliveries, as the
server's loop does). A schedule goes live through the same gate as any activation: a domain whose policy asks
for approvals needs an approved request for the draft by then.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from .app import Options, schedule_app
from .changes import connect_changes, short

if TYPE_CHECKING:
    from ..schedules import Schedule

AT_EXAMPLE = "2026-12-01T22:00:00Z"
_GRACE = re.compile(r"(\d{1,6})\s*(s|m|h|d)", re.IGNORECASE)
_GRACE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_GRACE = timedelta(days=7)
MAX_AHEAD = timedelta(days=366)  # V14's limit on how far ahead an activation may be scheduled
SEND_ROUNDS = 50  # at most this many batches of webhook deliveries per `schedule run`
SEND_BATCH = 20


def parse_at(text: str) -> datetime:
    """An ISO 8601 time with its zone (Z or ±hh:mm); a time without a zone is refused, never guessed."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time; give one such as {AT_EXAMPLE} "
                                 "(or with an offset: 2026-12-01T23:00:00+01:00)", param_hint="--at") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise typer.BadParameter(f"{text!r} has no time zone, and a guess could be hours off; add one: Z for UTC "
                                 f"({AT_EXAMPLE}) or an offset (+01:00)", param_hint="--at")
    return moment


def parse_grace(text: str) -> timedelta:
    """'30s', '5m', '2h', '1d': how late a due schedule may still run (0s: only on time)."""
    found = _GRACE.fullmatch(text.strip())
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a duration: a whole number and s, m, h or d, as in 5m",
                                 param_hint="--grace")
    grace = timedelta(**{_GRACE_UNITS[found[2].lower()]: int(found[1])})
    if grace > MAX_GRACE:
        raise typer.BadParameter("at most 7d", param_hint="--grace")
    return grace


def moment(value: datetime | None) -> str:
    """A time as an operator can act on it anywhere: ISO 8601 with the zone, to the second."""
    return value.astimezone().isoformat(timespec="seconds") if value else ""


def schedule_line(s: Schedule) -> str:
    draft = f"'{s.draft_name}'" if s.draft_name is not None else "(gone)"
    return f"schedule {s.id}: {s.domain} draft {draft} ({short(s.config_id)}) v{s.version} at {moment(s.run_at)}"


@schedule_app.command("list")
def schedule_list(
    ctx: typer.Context,
    all: Annotated[bool, typer.Option("--all", help="Finished and cancelled schedules too, not just pending ones.")
                   ] = False,
) -> None:
    """Scheduled activations: the pending ones by default, soonest first as the database lists them."""
    from .. import schedules as core
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        found = core.schedules(conn, status=None if all else "pending")
    if opts.json:
        return render.emit_json([s.json() for s in found])
    if not found:
        return render.lines("no scheduled activations" if all else "no pending scheduled activations")
    render.table(("id", "domain", "draft", "version", "run at", "status", "by", "reason", "outcome"),
                 [(str(s.id), s.domain, s.draft_name if s.draft_name is not None else "(gone)", f"v{s.version}",
                   moment(s.run_at), s.status, s.created_by, s.reason, s.outcome or "") for s in found])


@schedule_app.command("cancel")
def schedule_cancel(
    ctx: typer.Context,
    schedule: Annotated[str, typer.Argument(metavar="ID", help="The schedule: id or id prefix (6+).",
                                            show_default=False)],
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Cancel a pending scheduled activation: its draft stays a draft."""
    from .. import schedules as core
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        done = core.cancel(conn, schedule, actor=opts.actor, reason=reason)
    if opts.json:
        return render.emit_json(done.json())
    render.lines(f"cancelled {schedule_line(done)}: it will not go live then")


@schedule_app.command("run")
def schedule_run(
    ctx: typer.Context,
    grace: Annotated[str, typer.Option(metavar="DURATION", help="A due schedule later than this is marked missed "
                                                                "instead of run: 30s, 5m, 2h, 1d.")] = "5m",
) -> None:
    """Run the due schedules, note newly stale clients, send due webhook deliveries: once, for cron.

    Exit 1 when a schedule failed or was missed (its draft did not go live); what ran is printed either way.
    """
    from .. import events, webhooks
    from .. import schedules as core
    from . import render

    opts: Options = ctx.obj
    late = parse_grace(grace)
    with connect_changes(opts) as conn:
        ran = core.run_due(conn, grace=late, runner=opts.actor)
        stale = events.note_stale(conn)
    sent = 0
    with webhooks.Sender(lambda: connect_changes(opts)) as sender:
        for _ in range(SEND_ROUNDS):
            batch = sender.send_due(SEND_BATCH)
            sent += batch
            if batch < SEND_BATCH:
                break
    if opts.json:
        render.emit_json({"schedules": [r.json() for r in ran], "stale": stale, "deliveries": sent})
    else:
        render.lines(*(f"schedule {r.id} ({r.domain}): {r.status}" + (f": {r.outcome}" if r.outcome else "")
                       for r in ran),
                     f"{f'{len(ran)} due schedule(s) run' if ran else 'no schedule was due'}; "
                     f"{stale} client(s) newly stale; {sent} webhook deliveries attempted")
    bad = [r for r in ran if r.status in ("failed", "missed")]
    if bad:
        render.lines(f"error: {len(bad)} scheduled activation(s) did not go live: "
                     + "; ".join(f"{short(r.id)} ({r.domain}) {r.status}" for r in bad), stderr=True)
        raise typer.Exit(1)

