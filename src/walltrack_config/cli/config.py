"""The operator's commands: show, list, draft, set, diff, activate, rollback, discard, restore, history.

Each one wraps the library (lifecycle, audit, exchange) and prints through `render`; it adds no rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import FieldError, InvalidTransition, InvalidValue, NothingToDo
from .app import Options, app, connect_migrated
from .args import Domain, DomainArg, DraftOpt, ReasonOpt, Status, YesOpt
from .fleet import TimeoutOpt, WaitAppliedOpt, require_fleet
from .prompt import confirm

if TYPE_CHECKING:
    import psycopg

    from ..lifecycle import ConfigRow
    from ..models import Settings

ROW_REF = "a row: id, id prefix (6+) or name"


def parse_assignments(assignments: list[str], model: type[Settings]) -> dict[str, Any]:
    """KEY=VALUE pairs, each value read by its column's type: JSON for the drawdown tiers, null for none.

    A key given twice, here or inside a JSON value, is refused rather than one value silently winning; so
    are values over exchange.MAX_VALUE_BYTES and JSON nested deeper than exchange.MAX_DEPTH (json.loads
    would recurse until Python's stack runs out).
    """
    from functools import partial

    from ..errors import RepeatedSetting
    from ..exchange import MAX_DEPTH, MAX_VALUE_BYTES, json_depth
    from .render import visible

    def each_key_once(pairs: list[tuple[str, Any]], field: str) -> dict[str, Any]:
        # json.loads keeps the last of a repeated key, and the other value would vanish unseen.
        obj: dict[str, Any] = {}
        for name, item in pairs:
            if name in obj:
                raise InvalidValue(model.table, [FieldError(field, f"{visible(name)} given twice in the JSON "
                                                                   "value; give each key once")])
            obj[name] = item
        return obj

    changes: dict[str, Any] = {}
    for pair in assignments:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        if key in changes:
            raise RepeatedSetting(key)
        size = len(raw.encode("utf-8", "surrogateescape"))
        if size > MAX_VALUE_BYTES:
            raise InvalidValue(model.table, [FieldError(key, f"too large: {size:,} bytes, and the limit is "
                                                             f"{MAX_VALUE_BYTES >> 10} KiB")])
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            # Python keeps argument bytes that are not UTF-8 as lone surrogates, which no database column takes.
            raise InvalidValue(model.table, [FieldError(key, "not UTF-8 text")]) from exc
        info = model.model_fields.get(key)
        if info is not None and getattr(info.annotation, "__origin__", None) is list:
            if json_depth(raw) > MAX_DEPTH:
                raise InvalidValue(model.table, [FieldError(key, f"nested too deeply (more than {MAX_DEPTH} levels)")])
            try:
                changes[key] = json.loads(raw, object_pairs_hook=partial(each_key_once, field=key))
            except json.JSONDecodeError as exc:
                raise InvalidValue(model.table, [FieldError(key, f"not JSON: {exc.msg}")]) from exc
        elif (info is not None and raw.strip().lower() in ("null", "none") and not info.is_required()
              and info.default is None):
            changes[key] = None
        else:
            changes[key] = raw
    return changes


@app.command()
def show(
    ctx: typer.Context,
    domain: Annotated[Domain | None, typer.Argument(metavar="[DOMAIN]", help="A domain (default: every domain).",
                                                   show_default=False)] = None,
    id: Annotated[str | None, typer.Option("--id", help="A row: id, id prefix (6+) or name.")] = None,
    status: Annotated[Status | None, typer.Option(help="The newest row of this status.")] = None,
) -> None:
    """Every setting of a row (the active one by default) with its value, unit and meaning."""
    from .. import lifecycle
    from ..models import meaning_and_unit
    from . import render

    opts: Options = ctx.obj
    if id and status:
        raise typer.BadParameter("give --id or --status, not both")
    if id and domain is None:
        raise typer.BadParameter("--id needs a DOMAIN")
    chosen = [domain.value] if domain else [d.value for d in Domain]
    with connect_migrated(opts) as conn:
        shown = [(d, lifecycle.resolve(conn, d, id or (status or Status.ACTIVE).value), lifecycle.comments(conn, d))
                 for d in chosen]
    _warn_unreadable(row for _, row, _ in shown)
    if opts.json:
        columns = {d: row.columns() for d, row, _ in shown}
        return render.emit_json(columns[chosen[0]] if domain else columns)
    for n, (d, row, notes) in enumerate(shown):
        if n:
            render.lines("")
        render.table(("setting", "value", "unit", "meaning"),
                     [(name, render.value(getattr(row.settings, name)), *reversed(meaning_and_unit(notes.get(name))))
                      for name in type(row.settings).model_fields], title=f"{d}: {row.name}")
        render.lines(
            f"status {row.status}, version {row.version}, id {row.id}",
            f"changed by {row.updated_by} at {render.when(row.updated_at)}; "
            f"created by {row.created_by} at {render.when(row.created_at)}",
            *([f"description: {row.description}"] if row.description else []),
        )


@app.command("list")
def list_rows(ctx: typer.Context, domain: DomainArg) -> None:
    """Every row of a domain, newest first."""
    from .. import lifecycle
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        found = lifecycle.rows(conn, domain.value)
    _warn_unreadable(found)
    if opts.json:
        return render.emit_json([r.columns() for r in found])
    render.table(("status", "version", "name", "updated", "by", "id"),
                 [(r.status, str(r.version), r.name, render.when(r.updated_at), r.updated_by or "", str(r.id))
                  for r in found])


@app.command()
def draft(
    ctx: typer.Context,
    domain: DomainArg,
    from_: Annotated[str, typer.Option("--from", help=f"active, default, archived, or {ROW_REF}.")] = "active",
    name: Annotated[str | None, typer.Option(help="The draft's name; default '<source> (draft)'.")] = None,
    reason: ReasonOpt = None,
) -> None:
    """Clone a row into a new draft."""
    from .. import lifecycle
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        source = lifecycle.resolve(conn, domain.value, from_)
        row = lifecycle.clone(conn, domain.value, source.id, actor=opts.actor, reason=reason, name=name)
    if opts.json:
        return render.emit_json(row.columns())
    render.lines(f"draft {row.id} '{row.name}' created from the {source.status} row '{source.name}'")


@app.command("set")
def set_values(
    ctx: typer.Context,
    domain: DomainArg,
    assignments: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help="Settings to change.")],
    draft_id: DraftOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Change settings (or name, description) of a draft."""
    from .. import lifecycle
    from ..diff import diff_rows
    from . import render

    opts: Options = ctx.obj
    changes = parse_assignments(assignments, lifecycle.model_of(domain.value))
    with connect_migrated(opts) as conn:
        row = lifecycle.resolve(conn, domain.value, draft_id)
        new = lifecycle.edit(conn, domain.value, row.id, row.version, changes, actor=opts.actor, reason=reason)
    if new.version == row.version:
        raise NothingToDo(f"nothing to change: draft '{row.name}' already has these values")
    if opts.json:
        return render.emit_json(new.columns())
    render.changes_table(diff_rows(row, new))
    render.lines(f"draft '{new.name}' is now at version {new.version}")


@app.command("diff")
def diff_command(
    ctx: typer.Context,
    domain: DomainArg,
    a: Annotated[str | None, typer.Argument(
        help=f"active, default, draft, archived, or {ROW_REF} (default: active).")] = None,
    b: Annotated[str | None, typer.Argument(help="The same (default: the draft).")] = None,
) -> None:
    """Field by field, old to new; by default the draft against the active row."""
    from .. import lifecycle
    from ..diff import diff_rows
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        old, new = (lifecycle.resolve(conn, domain.value, ref) for ref in ((a or "active"), b or "draft"))
    _warn_unreadable((old, new))
    changes = diff_rows(old, new)
    if opts.json:
        return render.emit_json({"from": str(old.id), "to": str(new.id),
                                 "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in changes]})
    render.lines(f"{old.status} '{old.name}' (v{old.version}) -> {new.status} '{new.name}' (v{new.version})")
    render.changes_table(changes, old=old.status, new=new.status)


AtOpt = Annotated[str | None, typer.Option(
    "--at", metavar="TIME", show_default=False,
    help="Schedule it instead: an ISO 8601 time with its zone, as in 2026-12-01T22:00:00Z (needs --reason).")]
BreakGlassOpt = Annotated[bool, typer.Option(
    "--break-glass", help="Emergency: go live without the approvals the policy asks for, recorded as BREAK GLASS "
                          "(needs --reason; database owner, or the server's admins).")]


@app.command()
def activate(ctx: typer.Context, domain: DomainArg, draft_id: DraftOpt = None, reason: ReasonOpt = None,
             yes: YesOpt = False, wait_applied: WaitAppliedOpt = False, timeout: TimeoutOpt = 30.0,
             at: AtOpt = None, break_glass: BreakGlassOpt = False) -> None:
    """Make a draft live; shows the changes and asks first, unless --yes. What goes live is what was shown.

    With --at TIME it is scheduled for then instead; with --break-glass it goes live without the approvals
    its domain's policy asks for (see `policy show`), recorded as such.
    """
    from .. import lifecycle

    opts: Options = ctx.obj
    _check_wait(wait_applied, timeout)
    if at is not None:
        return _schedule(opts, domain.value, draft_id, at, reason, yes, wait_applied, break_glass)
    if break_glass:
        return _break_glass(opts, domain.value, draft_id, reason, yes, wait_applied, timeout)
    with connect_migrated(opts) as conn:
        if wait_applied:
            require_fleet(conn)
        row = lifecycle.resolve(conn, domain.value, draft_id)
        if _has_approvals(conn):
            from .changes import check_approved

            check_approved(conn, domain.value, row)  # before the question: the database would refuse it anyway
        _go_live(opts, domain.value, lifecycle.active_row(conn, domain.value), row, yes, "activate")
        try:
            done = lifecycle.activate(conn, domain.value, row.id, expected_version=row.version, actor=opts.actor,
                                      reason=reason)
        except InvalidTransition as exc:
            from ..errors import ApprovalRequired

            if not isinstance(exc, ApprovalRequired):
                raise
            # The approvals were there when checked and went meanwhile (an edit voided the request): say so again.
            from .changes import approval_missing

            raise approval_missing(conn, domain.value, row) from exc
        _report_live(opts, domain.value, done, "activated", conn if wait_applied else None, timeout)


def _has_approvals(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database has approval policies (V14): below it, activate works as it always did."""
    from .. import schema

    return schema.version(conn) >= schema.CHANGES


def _reason_for(flag: str, reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise typer.BadParameter(f"{flag} needs a reason, for the record: --reason TEXT", param_hint="--reason")
    return reason


def _schedule(opts: Options, domain: str, draft_id: str | None, at: str, reason: str | None, yes: bool,
              wait_applied: bool, break_glass: bool) -> None:
    """activate --at: shows the changes, asks, records the schedule; the server (or `schedule run`) runs it."""
    from .. import db, lifecycle, schedules
    from ..errors import FieldError
    from . import render
    from .changes import approved, connect_changes, missing_approvals, required, short
    from .schedules import MAX_AHEAD, moment, parse_at, schedule_line

    if break_glass:
        raise typer.BadParameter("a scheduled activation cannot break glass; it needs the approvals when it runs",
                                 param_hint="--break-glass")
    if wait_applied:
        raise typer.BadParameter("--wait-applied waits for an activation now; --at schedules one for later",
                                 param_hint="--wait-applied")
    run_at = parse_at(at)
    why = _reason_for("--at", reason)
    with connect_changes(opts) as conn:
        row = lifecycle.resolve(conn, domain, draft_id)
        now = db.scalar(conn, "SELECT statement_timestamp()", None, datetime)
        if run_at <= now or run_at >= now + MAX_AHEAD:
            problem = "is not in the future" if run_at <= now else f"is more than {MAX_AHEAD.days} days ahead"
            raise InvalidValue("walltrack.activation_schedules", [FieldError(
                "at", f"{moment(run_at)} {problem} (the database's time is {moment(now)})")])
        _go_live(opts, domain, lifecycle.active_row(conn, domain), row, yes, "schedule",
                 when=f" at {moment(run_at)}", declined="nothing was scheduled")
        made = schedules.schedule(conn, domain, row.id, row.version, run_at, actor=opts.actor, reason=why)
        needed = required(conn, domain)
        unapproved = missing_approvals(conn, domain, row, needed) if needed and approved(
            conn, domain, row, needed) is None else None
    if opts.json:
        render.emit_json(made.json())
    else:
        render.lines(f"scheduled: {schedule_line(made)}",
                     f"cancel with: walltrack-config schedule cancel {short(made.id)}")
    if unapproved is not None:
        render.lines(f"warning: the schedule fails when it runs unless approved by then: {unapproved}", stderr=True)


def _break_glass(opts: Options, domain: str, draft_id: str | None, reason: str | None, yes: bool,
                 wait_applied: bool, timeout: float) -> None:
    """activate --break-glass: loud; shows the changes and asks; goes live without approvals, recorded as such."""
    from .. import changes, lifecycle
    from . import render
    from .changes import connect_changes, required

    why = _reason_for("--break-glass", reason)
    with connect_changes(opts) as conn:
        if wait_applied:
            require_fleet(conn)
        row = lifecycle.resolve(conn, domain, draft_id)
        needed = required(conn, domain)
        render.lines(
            "!" * 78,
            f"!! BREAK GLASS: '{row.name}' goes live for {domain} without approval"
            + f" ({domain}'s policy asks for {needed or 'none'}).",
            "!! It is recorded as BREAK GLASS, with your name and reason, in the history and the change events,",
            "!! and sent to the webhooks that follow break_glass events. Use it for emergencies only.",
            "!" * 78,
            stderr=True,
        )
        _go_live(opts, domain, lifecycle.active_row(conn, domain), row, yes, "BREAK GLASS and activate")
        changes.break_glass(conn, domain, row.id, row.version, actor=opts.actor, reason=why)
        done = lifecycle.get(conn, domain, row.id)
        _report_live(opts, domain, done, "activated (BREAK GLASS)", conn if wait_applied else None, timeout)


@app.command()
def rollback(ctx: typer.Context, domain: DomainArg, reason: ReasonOpt = None, yes: YesOpt = False,
             wait_applied: WaitAppliedOpt = False, timeout: TimeoutOpt = 30.0) -> None:
    """Make the previous active settings live again; shows the changes and asks first, unless --yes."""
    from .. import lifecycle

    opts: Options = ctx.obj
    _check_wait(wait_applied, timeout)
    with connect_migrated(opts) as conn:
        if wait_applied:
            require_fleet(conn)
        previous = lifecycle.rollback_target(conn, domain.value)
        _go_live(opts, domain.value, lifecycle.active_row(conn, domain.value), previous, yes, "roll back to")
        done = lifecycle.rollback(conn, domain.value, actor=opts.actor, reason=reason, expected_id=previous.id)
        _report_live(opts, domain.value, done, "rolled back to", conn if wait_applied else None, timeout)


@app.command()
def discard(ctx: typer.Context, domain: DomainArg,
            row: Annotated[str, typer.Argument(metavar="DRAFT", help="The draft: id, id prefix (6+) or name.")],
            reason: ReasonOpt = None) -> None:
    """Delete a draft (its last state stays in the history)."""
    from .. import lifecycle
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        found = lifecycle.resolve(conn, domain.value, row)
        lifecycle.discard(conn, domain.value, found.id, actor=opts.actor, reason=reason)
    if opts.json:
        return render.emit_json(found.columns())
    render.lines(f"discarded draft '{found.name}' ({found.id}) of {domain.value}")


@app.command()
def restore(
    ctx: typer.Context,
    domain: DomainArg,
    row: Annotated[str, typer.Argument(metavar="ARCHIVED", help="The archived row: id, id prefix (6+) or name.")],
    name: Annotated[str | None, typer.Option(help="The new draft's name; default '<archived> (draft)'.")] = None,
    reason: ReasonOpt = None,
) -> None:
    """Bring an archived row back as a new draft, to edit and activate."""
    from .. import lifecycle
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        found = lifecycle.resolve(conn, domain.value, row)
        new = lifecycle.restore(conn, domain.value, found.id, actor=opts.actor, reason=reason, name=name)
    if opts.json:
        return render.emit_json(new.columns())
    render.lines(f"draft {new.id} '{new.name}' restored from the archived row '{found.name}'")


def _go_live(opts: Options, domain: str, current: ConfigRow, upcoming: ConfigRow, yes: bool, verb: str, *,
             when: str = "", declined: str | None = None) -> None:
    """Show what would change and ask '<verb> '<name>' for <domain><when>?' (unless --yes); no is NothingToDo."""
    from ..diff import diff_rows
    from . import render

    _warn_unreadable((current, upcoming))
    render.lines(f"{domain}: '{current.name}' (live) -> '{upcoming.name}' ({upcoming.status}, v{upcoming.version})",
                 stderr=opts.json)
    render.changes_table(diff_rows(current, upcoming), stderr=opts.json, old="live now", new="after")
    if not yes and not confirm(f"{verb} '{upcoming.name}' for {domain}{when}?"):
        stays = declined or f"{domain} stays on '{current.name}'"
        raise NothingToDo(f"not done: {stays}")


def _check_wait(wait_applied: bool, timeout: float) -> None:
    if timeout != 30.0 and not wait_applied:
        raise typer.BadParameter("--timeout is how long --wait-applied waits; give --wait-applied too",
                                 param_hint="--timeout")


def _report_live(opts: Options, domain: str, row: ConfigRow, verb: str, waiting: psycopg.Connection[Any] | None = None,
                 timeout: float = 30.0) -> None:
    """Say what went live; with a connection to wait on (--wait-applied), wait for the fleet to apply it too.

    What went live is said first, whatever the fleet does: it is committed.
    """
    from .. import lifecycle
    from . import render
    from .fleet import not_applied
    from .fleet import wait_applied as wait_fleet

    if not opts.json:
        render.lines(f"{verb} '{row.name}' ({row.id}): it is now the live {domain} config")
    if waiting is None:
        if opts.json:
            render.emit_json(row.columns())
        return
    made = lifecycle.last_activation(waiting, domain, row.id)
    applied = wait_fleet(waiting, domain, made.seq if made else 0, timeout)
    if opts.json:
        render.emit_json(row.columns() | {"applied": applied})
    error = not_applied(domain, applied, timeout)
    if error is not None:
        raise error


def _warn_unreadable(rows: Iterable[ConfigRow]) -> None:
    """One line per stored row the models refuse: shown as it is, never used silently."""
    from ..errors import UnreadableRow
    from . import render

    seen = set()
    for row in rows:
        if row.problems and row.id not in seen:
            seen.add(row.id)
            error = UnreadableRow(row.domain, row.id, row.name, list(row.problems))
            render.lines(f"warning: {error}", stderr=True)


@app.command()
def history(
    ctx: typer.Context,
    domain: DomainArg,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 20,
    since: Annotated[datetime | None, typer.Option(help="Only entries from this date or time on.")] = None,
) -> None:
    """A timeline of changes, newest first: when, who, what, each changed field old -> new, and why."""
    from .. import audit
    from . import render

    opts: Options = ctx.obj
    if since is not None and since.tzinfo is None:
        since = since.astimezone()  # a date typed by an operator means their local time
    with connect_migrated(opts) as conn:
        entries = audit.history(conn, domain.value, limit, since)
    if opts.json:
        return render.emit_json([e.columns() for e in entries])
    if not entries:
        return render.lines(f"no changes recorded for {domain.value}")
    for e in entries:
        row = e.new_values or e.old_values or {}
        who = e.performed_by if e.db_user in (None, e.performed_by) else f"{e.performed_by} (as {e.db_user})"
        head = f"{render.when(e.performed_at)}  {who}  {e.action}  '{row.get('name')}' v{row.get('version')}"
        render.lines(head + (f"  ({e.reason})" if e.reason else ""))
        if e.action in ("activate", "archive"):
            render.lines(f"    status: {(e.old_values or {}).get('status')} -> {(e.new_values or {}).get('status')}")
        for field in e.changed_fields or []:
            old, new = (e.old_values or {}).get(field), (e.new_values or {}).get(field)
            render.lines(f"    {field}: {render.value(old)} -> {render.value(new)}")
