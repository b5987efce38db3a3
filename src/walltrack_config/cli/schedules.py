"""Scheduled activations: `schedule list|cancel|run`, and the parsing of `activate --at`.

`activate --at TIME` (cli/config.py) records a schedule; the server runs it when it is due, or, with no server,
`schedule run` from cron does (it also marks newly stale clients and sends the due webhook deliveries, as the
server's loop does). A schedule goes live through the same gate as any activation: a domain whose policy asks
for approvals needs an approved request for the draft by then.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
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
    try:
        moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:59-01:00 in year 10000
        raise UsageError(f"--at {text.strip()[:40]!r} is out of range: in UTC it falls outside the years 1 to "
                         f"9999; give a time within the next {MAX_AHEAD.days} days, such as {AT_EXAMPLE}") from None
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
    """A time as an operator can act on it anywhere: ISO 8601 with the zone, to the second (in this machine's
    zone; in UTC where that falls outside the years 1 to 9999, as 9999-12-31T23:00Z does east of UTC)."""
    if value is None:
        return ""
    for zone in (None, UTC):
        try:
            return value.astimezone(zone).isoformat(timespec="seconds")
        except OverflowError:
            continue
    return value.isoformat(timespec="seconds")


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

    Exit 1 when a schedule failed or was missed (its draft did not go live); what ran is printed either way. When
    noting the clients or sending the deliveries fails (say, a role without EXECUTE on claim_deliveries), the
    schedules that ran are still printed, then the failure, and the exit code is the larger of 1 (a schedule
    failed) and the failure's own (2 for the database's).
    """
    from .. import events, webhooks
    from .. import schedules as core
    from . import render

    opts: Options = ctx.obj
    late = parse_grace(grace)
    step_errors = _step_errors()
    failed: list[tuple[str, Exception]] = []  # the steps after the schedules' that failed, and why
    stale: int | None = None
    with connect_changes(opts) as conn:
        ran = core.run_due(conn, grace=late, runner=opts.actor)
        # Those ran, each in its own transaction: nothing below may hide that.
        try:
            stale = events.note_stale(conn)
        except step_errors as exc:
            failed.append(("noting stale clients", exc))
    sent = 0
    try:
        with webhooks.Sender(lambda: connect_changes(opts)) as sender:
            for _ in range(SEND_ROUNDS):
                batch = sender.send_due(SEND_BATCH)
                sent += batch
                if batch < SEND_BATCH:
                    break
    except step_errors as exc:
        failed.append(("sending webhook deliveries", exc))
    problems = [(what, *_failure(exc)) for what, exc in failed]
    if opts.json:
        render.emit_json({"schedules": [r.json() for r in ran], "stale": stale, "deliveries": sent,
                          "errors": [f"{what} failed: {said}" for what, said, _ in problems]})
    else:
        noted = "stale clients not noted" if stale is None else f"{stale} client(s) newly stale"
        render.lines(*(f"schedule {r.id} ({r.domain}): {r.status}" + (f": {r.outcome}" if r.outcome else "")
                       for r in ran),
                     f"{f'{len(ran)} due schedule(s) run' if ran else 'no schedule was due'}; "
                     f"{noted}; {sent} webhook deliveries attempted")
    code = 0
    bad = [r for r in ran if r.status in ("failed", "missed")]
    if bad:
        render.lines(f"error: {len(bad)} scheduled activation(s) did not go live: "
                     + "; ".join(f"{short(r.id)} ({r.domain}) {r.status}" for r in bad), stderr=True)
        code = 1
    for what, said, exit_code in problems:
        render.lines(f"error: {what} failed: {said}", stderr=True)
        code = max(code, exit_code)
    if code:
        raise typer.Exit(code)


def _step_errors() -> tuple[type[Exception], ...]:
    import psycopg

    from ..errors import ConfigError

    return ConfigError, psycopg.Error



def _failure(exc: Exception) -> tuple[str, int]:
    """A failed step in one line and its exit code, as the CLI's entry point would have put it."""
    from ..errors import ConfigError
    from .render import visible

    if isinstance(exc, ConfigError):
        return visible(" ".join(str(exc).split())), exc.exit_code
    return f"database: {visible(' '.join(str(exc).split()))}", 2
