"""The walltrack-config command line.

typer only wraps plain functions from the library; this module alone prints, and
`main` alone turns a ConfigError into one line on stderr and an exit code.
Heavy imports (psycopg, rich, pglast) happen inside commands so --help stays instant.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .errors import ConfigError

app = typer.Typer(
    name="walltrack-config",
    help="WallTrack's configuration backbone: versioned, audited settings in PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Apply, undo and inspect the schema migrations.", no_args_is_help=True)
embedded_app = typer.Typer(help="The embedded PostgreSQL used when no database URL is given.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(embedded_app, name="embedded")


@dataclass
class Options:
    database_url: str | None
    actor: str
    json: bool
    migrations_dir: Path | None = None


def _default_actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        Optional[str],
        typer.Option(help="PostgreSQL URL; default $WALLTRACK_DATABASE_URL, else the embedded server."),
    ] = None,
    actor: Annotated[Optional[str], typer.Option(help="Who is acting, for the records; default your login.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
) -> None:
    ctx.obj = Options(database_url, actor or _default_actor(), json_output)


@db_app.callback()
def db_root(
    ctx: typer.Context,
    migrations_dir: Annotated[
        Optional[Path], typer.Option(help="Folder of V<n>__/U<n>__ files; default the ones shipped.")
    ] = None,
) -> None:
    ctx.obj.migrations_dir = migrations_dir


@db_app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Apply pending migrations in version order."""
    from . import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with _connect(opts) as conn:
        applied = runner.migrate(conn, found, opts.actor)
        _report(opts, "applied", applied, runner.status(conn, found))


@db_app.command("undo")
def db_undo(
    ctx: typer.Context,
    to: Annotated[Optional[int], typer.Option(min=0, help="Undo every migration above this version (0: all).")] = None,
) -> None:
    """Undo the latest applied migration, or every one above --to."""
    from . import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with _connect(opts) as conn:
        undone = runner.undo(conn, found, opts.actor, to)
        _report(opts, "undone", undone, runner.status(conn, found))


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """List applied and pending migrations."""
    from . import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with _connect(opts) as conn:
        rows = runner.status(conn, found)
    _status_table(opts, rows)


@db_app.command("validate")
def db_validate(
    ctx: typer.Context,
    accept: Annotated[bool, typer.Option(help="Record the changed files' checksums as the applied ones.")] = False,
) -> None:
    """Report applied migration files whose content changed since they ran."""
    from . import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with _connect(opts) as conn:
        rows = runner.validate(conn, found, opts.actor, accept)
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
    from . import db

    pgdata = db.home() / "pgdata"
    running = (pgdata / "postmaster.pid").exists()
    if ctx.obj.json:
        return _json({"pgdata": str(pgdata), "running": running})
    typer.echo(f"{pgdata}: {'running' if running else 'stopped'}")


@embedded_app.command("stop")
def embedded_stop(ctx: typer.Context) -> None:
    """Stop the embedded server (the next command starts it again)."""
    from . import db

    stopped = db.stop_embedded()
    if ctx.obj.json:
        return _json({"stopped": stopped})
    typer.echo("stopped" if stopped else "not running")


def _discover(opts: Options):
    from . import migrations

    # Read and check the whole folder before any connection: a malformed one touches nothing.
    return migrations.discover(opts.migrations_dir)


def _connect(opts: Options):
    from . import db

    return db.connect(db.resolve_url(opts.database_url))


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
    Console(highlight=False).print(table)


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


from . import cli_config, cli_live  # noqa: E402,F401  (register the operator's commands on `app`)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: errors become one line on stderr, never a traceback."""
    try:
        app(args=argv, prog_name="walltrack-config")
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # A database failure we did not foresee (the server went away mid-command) is still not a bug to dump.
        if type(exc).__module__.startswith("psycopg"):
            typer.echo(f"error: database: {' '.join(str(exc).split())}", err=True)
            sys.exit(2)
        raise
