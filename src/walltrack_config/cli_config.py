"""The operator's commands: show, list, draft, set, edit, diff, activate, rollback, history, export, import.

Each one wraps the library (lifecycle, audit, exchange) and prints through `render`; it adds no rule.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .cli import Options, _connect, app
from .cli_args import Domain, DomainArg, DraftOpt, Format, ReasonOpt, Status, YesOpt
from .errors import FieldError, InvalidValue, NothingToDo

def parse_assignments(assignments: list[str], model: type) -> dict[str, Any]:
    """KEY=VALUE pairs, each value read by its column's type: JSON for the drawdown tiers, null for none."""
    changes: dict[str, Any] = {}
    for pair in assignments:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        info = model.model_fields.get(key)
        if info is not None and getattr(info.annotation, "__origin__", None) is list:
            try:
                changes[key] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidValue(model.table, [FieldError(key, f"not JSON: {exc.msg}")]) from None
        elif info is not None and raw.strip().lower() in ("null", "none") and not info.is_required() and info.default is None:
            changes[key] = None
        else:
            changes[key] = raw
    return changes


def _run_editor(text: str) -> str | None:
    """The text after $VISUAL or $EDITOR (default vi) edited it; None when it was not saved."""
    import os
    import shlex
    import subprocess
    import tempfile

    from .errors import UsageError

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
    path = Path(handle.name)
    try:
        before = path.stat().st_mtime_ns
        try:
            done = subprocess.run([*shlex.split(editor), str(path)])
        except OSError as exc:
            raise UsageError(f"cannot start the editor {editor!r}: {exc.strerror}; set $EDITOR") from None
        if done.returncode != 0:
            raise NothingToDo(f"edit abandoned: {editor} exited with status {done.returncode}")
        after = path.read_text()
        return after if after != text or path.stat().st_mtime_ns != before else None
    finally:
        path.unlink(missing_ok=True)


def _confirm(question: str) -> bool:
    """Ask on stderr (stdout may be JSON); no answer, or no terminal and no input, is no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


@app.command()
def show(
    ctx: typer.Context,
    domain: DomainArg,
    id: Annotated[Optional[str], typer.Option("--id", help="A row id.")] = None,
    status: Annotated[Optional[Status], typer.Option(help="The newest row of this status.")] = None,
) -> None:
    """Every setting of a row (the active one by default) with its value, unit and meaning."""
    from . import lifecycle, render
    from .errors import NotFound
    from .models import meaning_and_unit

    opts: Options = ctx.obj
    if id and status:
        raise typer.BadParameter("give --id or --status, not both")
    with _connect(opts) as conn:
        if id:
            row = lifecycle.get(conn, domain.value, id)
        else:
            wanted = (status or Status.active).value
            found = lifecycle.rows(conn, domain.value, wanted)
            if not found:
                raise NotFound(lifecycle.table_of(domain.value), message=f"{domain.value} has no {wanted} row")
            row = found[0]
        notes = lifecycle.comments(conn, domain.value)
    if opts.json:
        return render.emit_json(row.columns())
    render.table(("setting", "value", "unit", "meaning"),
                 [(name, render.value(getattr(row.settings, name)), *reversed(meaning_and_unit(notes.get(name))))
                  for name in type(row.settings).model_fields], title=f"{domain.value}: {row.name}")
    render.lines(
        f"status {row.status}, version {row.version}, id {row.id}",
        f"changed by {row.updated_by} at {render.when(row.updated_at)}; created by {row.created_by} at {render.when(row.created_at)}",
        *([f"description: {row.description}"] if row.description else []),
    )


@app.command("list")
def list_rows(ctx: typer.Context, domain: DomainArg) -> None:
    """Every row of a domain, newest first."""
    from . import lifecycle, render

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        found = lifecycle.rows(conn, domain.value)
    if opts.json:
        return render.emit_json([r.columns() for r in found])
    render.table(("status", "version", "name", "updated", "by", "id"),
                 [(r.status, str(r.version), r.name, render.when(r.updated_at), r.updated_by or "", str(r.id)) for r in found])


@app.command()
def draft(
    ctx: typer.Context,
    domain: DomainArg,
    from_: Annotated[str, typer.Option("--from", help="active, default or a row id.")] = "active",
    name: Annotated[Optional[str], typer.Option(help="The draft's name; default '<source> (draft)'.")] = None,
    reason: ReasonOpt = None,
) -> None:
    """Clone a row into a new draft."""
    from . import lifecycle, render

    opts: Options = ctx.obj
    with _connect(opts) as conn:
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
    """Change settings of a draft."""
    from . import lifecycle, render
    from .diff import diff

    opts: Options = ctx.obj
    changes = parse_assignments(assignments, lifecycle.model_of(domain.value))
    with _connect(opts) as conn:
        row = lifecycle.resolve(conn, domain.value, draft_id)
        new = lifecycle.edit(conn, domain.value, row.id, row.version, changes, actor=opts.actor, reason=reason)
    if new.version == row.version:
        raise NothingToDo(f"nothing to change: draft '{row.name}' already has these values")
    if opts.json:
        return render.emit_json(new.columns())
    render.changes_table(diff(row.settings, new.settings))
    render.lines(f"draft '{new.name}' is now at version {new.version}")


@app.command()
def edit(ctx: typer.Context, domain: DomainArg, draft_id: DraftOpt = None, reason: ReasonOpt = None) -> None:
    """Open a draft in $EDITOR as YAML; it is checked on save and reopened with the error when invalid."""
    from . import exchange, lifecycle, render
    from .errors import InvalidFile, UnknownField
    from .models import meaning_and_unit, plain

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        row = lifecycle.resolve(conn, domain.value, draft_id)
        notes = lifecycle.comments(conn, domain.value)
        original = {"name": row.name, "description": row.description} | plain(row.settings)
        lines = [f"# {domain.value} draft {row.id}, version {row.version}. Save to apply; quit without saving to abandon."]
        for key, current in original.items():
            meaning, unit = meaning_and_unit(notes.get(key))
            lines += [f"# {meaning}" + (f" ({unit})" if unit else ""), exchange.dumps({key: current}).rstrip()]
        text, error = "\n".join(lines) + "\n", None
        while True:
            shown = (f"# ERROR: {error}\n# Fix it and save again.\n" if error else "") + text
            edited = _run_editor(shown)
            if edited is None:
                raise NothingToDo("edit abandoned: nothing was saved")
            body = "\n".join(line for line in edited.splitlines()
                             if not line.startswith("# ERROR:") and line != "# Fix it and save again.") + "\n"
            try:
                values = exchange.loads(body, "the edited draft")
                changes = {k: v for k, v in values.items() if original.get(k, object()) != v}
                new = lifecycle.edit(conn, domain.value, row.id, row.version, changes, actor=opts.actor, reason=reason)
                break
            except (InvalidFile, InvalidValue, UnknownField) as exc:
                if body == text:
                    raise  # saved again unchanged: the operator gave up on fixing it
                error, text = str(exc), body
    if new.version == row.version:
        raise NothingToDo(f"nothing to change: draft '{row.name}' is as it was")
    if opts.json:
        return render.emit_json(new.columns())
    render.lines(f"draft '{new.name}' is now at version {new.version}")


@app.command("diff")
def diff_rows(
    ctx: typer.Context,
    domain: DomainArg,
    a: Annotated[Optional[str], typer.Argument(help="active, default, draft, archived or an id (default: active).")] = None,
    b: Annotated[Optional[str], typer.Argument(help="The same (default: the draft).")] = None,
) -> None:
    """Field by field, old to new; by default the draft against the active row."""
    from . import lifecycle, render
    from .diff import diff

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        old, new = (lifecycle.resolve(conn, domain.value, ref) for ref in ((a or "active"), b or "draft"))
    changes = diff(old.settings, new.settings)
    if opts.json:
        return render.emit_json({"from": str(old.id), "to": str(new.id),
                                 "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in changes]})
    render.lines(f"{old.status} '{old.name}' (v{old.version}) -> {new.status} '{new.name}' (v{new.version})")
    render.changes_table(changes, old=old.status, new=new.status)


@app.command()
def activate(ctx: typer.Context, domain: DomainArg, draft_id: DraftOpt = None, reason: ReasonOpt = None,
             yes: YesOpt = False) -> None:
    """Make a draft live; shows the changes and asks first, unless --yes."""
    from . import lifecycle

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        row = lifecycle.resolve(conn, domain.value, draft_id)
        _go_live(opts, domain.value, lifecycle.active_row(conn, domain.value), row, yes, "activate")
        done = lifecycle.activate(conn, domain.value, row.id, actor=opts.actor, reason=reason)
    _report_live(opts, domain.value, done, "activated")


@app.command()
def rollback(ctx: typer.Context, domain: DomainArg, reason: ReasonOpt = None, yes: YesOpt = False) -> None:
    """Make the previous active settings live again; shows the changes and asks first, unless --yes."""
    from . import lifecycle
    from .errors import InvalidTransition, NotFound

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        try:
            previous = lifecycle.resolve(conn, domain.value, "archived")
        except NotFound:
            raise InvalidTransition(lifecycle.table_of(domain.value), f"nothing to roll back to in {domain.value}",
                                    "a rollback needs an earlier active config") from None
        _go_live(opts, domain.value, lifecycle.active_row(conn, domain.value), previous, yes, "roll back to")
        done = lifecycle.rollback(conn, domain.value, actor=opts.actor, reason=reason)
    _report_live(opts, domain.value, done, "rolled back to")


def _go_live(opts: Options, domain: str, current, upcoming, yes: bool, verb: str) -> None:
    from . import render
    from .diff import diff

    render.lines(f"{domain}: '{current.name}' (live) -> '{upcoming.name}' ({upcoming.status})", stderr=opts.json)
    render.changes_table(diff(current.settings, upcoming.settings), stderr=opts.json, old="live now", new="after")
    if not yes and not _confirm(f"{verb} '{upcoming.name}' for {domain}?"):
        raise NothingToDo(f"not done: {domain} stays on '{current.name}'")


def _report_live(opts: Options, domain: str, row, verb: str) -> None:
    from . import render

    if opts.json:
        return render.emit_json(row.columns())
    render.lines(f"{verb} '{row.name}' ({row.id}): it is now the live {domain} config")


@app.command()
def history(
    ctx: typer.Context,
    domain: DomainArg,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 20,
    since: Annotated[Optional[datetime], typer.Option(help="Only entries from this date or time on.")] = None,
) -> None:
    """A timeline of changes, newest first: when, who, what, each changed field old -> new, and why."""
    from . import audit, render

    opts: Options = ctx.obj
    if since is not None and since.tzinfo is None:
        since = since.astimezone()  # a date typed by an operator means their local time
    with _connect(opts) as conn:
        entries = audit.history(conn, domain.value, limit, since)
    if opts.json:
        return render.emit_json([e.columns() for e in entries])
    if not entries:
        return render.lines(f"no changes recorded for {domain.value}")
    for e in entries:
        row = e.new_values or e.old_values or {}
        head = f"{render.when(e.performed_at)}  {e.performed_by}  {e.action}  '{row.get('name')}' v{row.get('version')}"
        render.lines(head + (f"  ({e.reason})" if e.reason else ""))
        if e.action in ("activate", "archive"):
            render.lines(f"    status: {(e.old_values or {}).get('status')} -> {(e.new_values or {}).get('status')}")
        for field in e.changed_fields or []:
            render.lines(f"    {field}: {render.value(e.old_values.get(field))} -> {render.value(e.new_values.get(field))}")


@app.command()
def export(
    ctx: typer.Context,
    domains: Annotated[Optional[list[Domain]], typer.Argument(help="Domains to export (default: all).")] = None,
    format: Annotated[Format, typer.Option("--format", help="yaml or json (--json means json).")] = Format.yaml,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """The active settings as a file a person can review in git."""
    from . import exchange, render

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        document = exchange.export_document(conn, [d.value for d in domains or []])
    text = exchange.dumps(document, "json" if opts.json else format.value)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    render.lines(f"exported {len(document['domains'])} domains to {output}", stderr=opts.json)


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A file from export.")],
    activate_: Annotated[bool, typer.Option("--activate", help="Make the new drafts live too.")] = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
) -> None:
    """Drafts for the domains whose values differ from the file; all checked before any is written."""
    from . import exchange, render

    opts: Options = ctx.obj
    document = exchange.loads(file.read_text(), str(file))
    with _connect(opts) as conn:
        plans = exchange.plan(conn, document, str(file))
        for p in plans:
            render.lines(f"{p.domain}: '{p.active.name}' (live) -> {file.name}", stderr=opts.json)
            render.changes_table(p.changes, stderr=opts.json, old="live now", new="file")
        if activate_ and not yes and not _confirm(f"import and activate {len(plans)} domain(s)?"):
            raise NothingToDo("not done: nothing was imported")
        done = exchange.apply(conn, plans, actor=opts.actor, reason=reason, activate=activate_)
    if opts.json:
        return render.emit_json([r.columns() for r in done])
    for r in done:
        render.lines(f"{r.domain}: {'activated' if activate_ else 'draft'} '{r.name}' ({r.id})")
