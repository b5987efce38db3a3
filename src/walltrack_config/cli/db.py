"""`walltrack-config db …` and `embedded …`: migrations and the embedded server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .app import Options, OutputClosed, connect, db_app, embedded_app

LockTimeoutOpt = Annotated[
    Optional[float],
    typer.Option(min=0, metavar="SECONDS", help="Give up (exit 1, nothing changed) when another migration "
                                                 "holds the lock this long; default: wait."),
]


@db_app.callback()
def db_root(
    ctx: typer.Context,
    migrations_dir: Annotated[
        Optional[Path], typer.Option(help="Folder of V<n>__/U<n>__ files; default the ones shipped.")
    ] = None,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    ctx.obj.migrations_dir = migrations_dir
    ctx.obj.lock_timeout = lock_timeout


@db_app.command("migrate")
def db_migrate(ctx: typer.Context, lock_timeout: LockTimeoutOpt = None) -> None:
    """Apply pending migrations in version order."""
    from ..migrate import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with connect(opts) as conn:
        applied = runner.migrate(conn, found, opts.actor, **_lock_wait(opts, lock_timeout))
        _report(opts, "applied", applied, runner.status(conn, found))


@db_app.command("undo")
def db_undo(
    ctx: typer.Context,
    to: Annotated[Optional[int], typer.Option(min=0, help="Undo every migration above this version (0: all).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Undo the latest applied migration, or every one above --to; shows what it would drop and asks first."""
    from ..migrate import runner
    from ..errors import NothingToDo

    opts: Options = ctx.obj
    found = _discover(opts)
    wait = _lock_wait(opts, lock_timeout)
    # One hold of the lock from the preview to the undo: what the operator agrees to is exactly what runs.
    with connect(opts) as conn, runner.lock(conn, wait["on_wait"], wait["lock_timeout"]):
        preview = runner.undo_preview(conn, found, to)
        _show_preview(preview)
        if not yes:
            from .prompt import confirm

            if not sys.stdin.isatty():
                raise NothingToDo("not undone: undo drops what is listed above and asks first, but stdin is not "
                                  "a terminal; pass --yes to undo without the question")
            if not confirm(f"undo {', '.join(f'V{v}' for v in preview.versions)}?"):
                raise NothingToDo("not undone: the database is as it was")
        undone = runner.undo(conn, found, opts.actor, to)
        _report(opts, "undone", undone, runner.status(conn, found))


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """List applied and pending migrations."""
    from ..migrate import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with connect(opts) as conn:
        rows = runner.status(conn, found)
    _status_table(opts, rows)


@db_app.command("validate")
def db_validate(
    ctx: typer.Context,
    accept: Annotated[bool, typer.Option(help="Record the changed files' checksums as the applied ones.")] = False,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Report applied migration files whose content changed since they ran."""
    from ..migrate import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with connect(opts) as conn:
        rows = runner.validate(conn, found, opts.actor, accept, **_lock_wait(opts, lock_timeout))
    if opts.json:
        _json([_row(r) for r in rows])
    elif not rows:
        typer.echo("all applied migrations match their files")
    for r in rows if not opts.json else []:
        verb = "accepted" if accept and r.state == "changed" else r.state
        typer.echo(f"V{r.version} {r.description}: {verb}")
    if rows and not accept:
        raise typer.Exit(1)


@embedded_app.command("status")
def embedded_status(ctx: typer.Context) -> None:
    """Where the embedded server keeps its data, and whether it runs."""
    from .. import db

    pgdata = db.home() / "pgdata"
    running = (pgdata / "postmaster.pid").exists()
    if ctx.obj.json:
        return _json({"pgdata": str(pgdata), "running": running})
    typer.echo(f"{pgdata}: {'running' if running else 'stopped'}")


@embedded_app.command("stop")
def embedded_stop(ctx: typer.Context) -> None:
    """Stop the embedded server (the next command starts it again)."""
    from .. import db

    stopped = db.stop_embedded()
    if ctx.obj.json:
        return _json({"stopped": stopped})
    typer.echo("stopped" if stopped else "not running")


def _discover(opts: Options):
    from ..migrate import plan as migrations

    # Read and check the whole folder before any connection: a malformed one touches nothing.
    return migrations.discover(opts.migrations_dir)


def _lock_wait(opts: Options, lock_timeout: float | None) -> dict[str, Any]:
    """How a runner call waits for another's lock: say so on stderr, for at most --lock-timeout seconds."""

    def waiting(pid: int | None) -> None:
        holder = f" (pid {pid})" if pid else ""
        typer.echo(f"waiting for another walltrack-config migration{holder} to finish…", err=True)

    # Given after the command it wins over the one given after `db`.
    return {"on_wait": waiting, "lock_timeout": lock_timeout if lock_timeout is not None else opts.lock_timeout}


def _show_preview(preview) -> None:
    """What an undo would drop, on stderr (stdout may be JSON), before the question."""

    def say(text: str) -> None:
        typer.echo(text, err=True)

    def amount(count: int | None, unit: str) -> str:
        return f"{unit}s unknown (not readable)" if count is None else f"{count} {unit}{'' if count == 1 else 's'}"

    say(f"undo {', '.join(f'V{m.version} {m.description}' for m in preview.plan)}: "
        f"the database would be at V{preview.current}")
    if preview.tables:
        say("tables it drops, with their rows:")
        for loss in preview.tables:
            say(f"  {loss.name}: {amount(loss.count, 'row')}")
    if preview.columns:
        say("columns it drops, with their values:")
        for loss in preview.columns:
            say(f"  {loss.name}: {amount(loss.count, 'value')}")
    if not preview.tables and not preview.columns:
        say("it drops no table and no column")
    if preview.failure is not None:
        failure = preview.failure
        say(f"{failure.path.name}:{failure.line} would fail: {failure.message}; "
            f"the undo would stop there, at V{preview.current}")


def _report(opts: Options, verb: str, done, rows) -> None:
    current = max((r.version for r in rows if r.state == "applied"), default=0)
    if opts.json:
        return _json({verb: [_migration(m) for m in done], "current": current})
    for m in done:
        typer.echo(f"{verb} V{m.version} {m.description}")
    typer.echo(f"database is at V{current}" if done else f"nothing to migrate: database is at V{current}")


def _status_table(opts: Options, rows) -> None:
    if opts.json:
        return _json([_row(r) for r in rows])
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None)
    for header in ("Version", "Description", "State", "Checksum", "Applied at", "By"):
        table.add_column(header, no_wrap=True)
    for r in rows:
        when = r.applied_at.astimezone().strftime("%Y-%m-%d %H:%M") if r.applied_at else ""
        table.add_row(f"V{r.version}", r.description, r.state, r.checksum[:12], when, r.applied_by or "")
    console = Console(highlight=False)
    console.on_broken_pipe = _output_closed  # rich would exit 1 on its own; a closed pipe ends with 0
    console.print(table)


def _output_closed() -> None:
    raise OutputClosed()


def _migration(m) -> dict[str, Any]:
    return {"version": m.version, "description": m.description, "file": m.name, "checksum": m.apply.checksum}


def _row(r) -> dict[str, Any]:
    return {
        "version": r.version,
        "description": r.description,
        "state": r.state,
        "checksum": r.checksum,
        "applied_at": r.applied_at.isoformat() if r.applied_at else None,
        "applied_by": r.applied_by,
    }


def _json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))
