"""`walltrack-config db …` and `embedded …`: migrations and the embedded server.

Like every command they print through `render`: plain text when piped, a rich table on a terminal, one
JSON document with --json; what an undo would drop, and waits for the lock, go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import typer

from .app import Options, connect, db_app, embedded_app

if TYPE_CHECKING:
    from ..migrate.plan import Migration, StatusRow, UndoPreview

LockTimeoutOpt = Annotated[
    float | None,
    typer.Option(min=0, metavar="SECONDS", help="Give up (exit 1, nothing changed) when another migration "
                                                 "holds the lock this long; default: wait."),
]


@db_app.callback()
def db_root(
    ctx: typer.Context,
    migrations_dir: Annotated[
        Path | None, typer.Option(help="Folder of V<n>__/U<n>__ files; default the ones shipped.")
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
    to: Annotated[int | None, typer.Option(min=0, help="Undo every migration above this version (0: all).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Undo the latest applied migration, or every one above --to; shows what it would drop and asks first."""
    from ..errors import NothingToDo
    from ..migrate import runner

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
    from . import render

    opts: Options = ctx.obj
    found = _discover(opts)
    with connect(opts) as conn:
        rows = runner.status(conn, found)
    if opts.json:
        return render.emit_json([_row(r) for r in rows])
    render.table(("version", "description", "state", "checksum", "applied at", "by"),
                 [(f"V{r.version}", r.description, r.state, r.checksum[:12], render.when(r.applied_at),
                   r.applied_by or "") for r in rows])


@db_app.command("validate")
def db_validate(
    ctx: typer.Context,
    accept: Annotated[bool, typer.Option(help="Record the changed files' checksums as the applied ones.")] = False,
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Report applied migration files whose content changed since they ran."""
    from ..migrate import runner
    from . import render

    opts: Options = ctx.obj
    found = _discover(opts)
    with connect(opts) as conn:
        rows = runner.validate(conn, found, opts.actor, accept, **_lock_wait(opts, lock_timeout))
    if opts.json:
        render.emit_json([_row(r) for r in rows])
    elif not rows:
        render.lines("all applied migrations match their files")
    else:
        render.lines(*(f"V{r.version} {r.description}: {'accepted' if accept and r.state == 'changed' else r.state}"
                       for r in rows))
    if rows and not accept:
        raise typer.Exit(1)


@embedded_app.command("status")
def embedded_status(ctx: typer.Context) -> None:
    """Where the embedded server keeps its data, and whether it runs."""
    from .. import db
    from . import render

    pgdata = db.home() / "pgdata"
    running = (pgdata / "postmaster.pid").exists()
    if ctx.obj.json:
        return render.emit_json({"pgdata": str(pgdata), "running": running})
    render.lines(f"{pgdata}: {'running' if running else 'stopped'}")


@embedded_app.command("stop")
def embedded_stop(ctx: typer.Context) -> None:
    """Stop the embedded server (the next command starts it again)."""
    from .. import db
    from . import render

    stopped = db.stop_embedded()
    if ctx.obj.json:
        return render.emit_json({"stopped": stopped})
    render.lines("stopped" if stopped else "not running")


def _discover(opts: Options) -> list[Migration]:
    from ..migrate import plan as migrations

    # Read and check the whole folder before any connection: a malformed one touches nothing.
    return migrations.discover(opts.migrations_dir)


class LockWait(TypedDict):
    on_wait: Callable[[int | None], None]
    lock_timeout: float | None


def _lock_wait(opts: Options, lock_timeout: float | None) -> LockWait:
    """How a runner call waits for another's lock: say so on stderr, for at most --lock-timeout seconds."""
    from . import render

    def waiting(pid: int | None) -> None:
        holder = f" (pid {pid})" if pid else ""
        render.lines(f"waiting for another walltrack-config migration{holder} to finish…", stderr=True)

    # Given after the command it wins over the one given after `db`.
    return {"on_wait": waiting, "lock_timeout": lock_timeout if lock_timeout is not None else opts.lock_timeout}


def _show_preview(preview: UndoPreview) -> None:
    """What an undo would drop, on stderr (stdout may be JSON), before the question."""
    from . import render

    def amount(count: int | None, unit: str) -> str:
        return f"{unit}s unknown (not readable)" if count is None else f"{count} {unit}{'' if count == 1 else 's'}"

    said = [f"undo {', '.join(f'V{m.version} {m.description}' for m in preview.plan)}: "
            f"the database would be at V{preview.current}"]
    if preview.tables:
        said += ["tables it drops, with their rows:",
                 *(f"  {t.name}: {amount(t.count, 'row')}" for t in preview.tables)]
    if preview.columns:
        said += ["columns it drops, with their values:",
                 *(f"  {c.name}: {amount(c.count, 'value')}" for c in preview.columns)]
    if not preview.tables and not preview.columns:
        said.append("it drops no table and no column")
    if preview.failure is not None:
        failure = preview.failure
        said.append(f"{failure.path.name}:{failure.line} would fail: {failure.message}; "
                    f"the undo would stop there, at V{preview.current}")
    render.lines(*said, stderr=True)


def _report(opts: Options, verb: str, done: list[Migration], rows: list[StatusRow]) -> None:
    from . import render

    current = max((r.version for r in rows if r.state == "applied"), default=0)
    if opts.json:
        return render.emit_json({verb: [_migration(m) for m in done], "current": current})
    render.lines(*(f"{verb} V{m.version} {m.description}" for m in done),
                 f"database is at V{current}" if done else f"nothing to migrate: database is at V{current}")


def _migration(m: Migration) -> dict[str, Any]:
    return {"version": m.version, "description": m.description, "file": m.name, "checksum": m.apply.checksum}


def _row(r: StatusRow) -> dict[str, Any]:
    return {
        "version": r.version,
        "description": r.description,
        "state": r.state,
        "checksum": r.checksum,
        "applied_at": r.applied_at.isoformat() if r.applied_at else None,
        "applied_by": r.applied_by,
    }
