"""The walltrack-config command line.

typer only wraps plain functions from the library; this module alone prints, and
`main` alone turns a ConfigError into one line on stderr and an exit code.
Heavy imports (psycopg, rich, pglast) happen inside commands so --help stays instant.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from .errors import ConfigError

PROG = "walltrack-config"


class OutputClosed(Exception):
    """stdout's reader went away (`| head -1`): the command ends quietly, as other Unix tools do."""


class _Group(TyperGroup):
    """The root command. click would turn EPIPE into a silent exit 1; here it becomes OutputClosed for `main`.

    make_context covers what the root prints itself (--help, --version); invoke covers every command.
    """

    def make_context(self, *args: Any, **kwargs: Any):
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise OutputClosed() from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise OutputClosed() from None


app = typer.Typer(
    name=PROG,
    cls=_Group,
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
    lock_timeout: float | None = None  # seconds to wait for another runner's lock; None: as long as it takes


def _default_actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _version(wanted: bool) -> None:
    if not wanted:
        return
    from importlib import metadata

    try:
        number = metadata.version(PROG)
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        from . import __version__ as number
    typer.echo(f"{PROG} {number}")
    raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        Optional[str],
        typer.Option(help="PostgreSQL URL; default $WALLTRACK_DATABASE_URL, else the embedded server."),
    ] = None,
    actor: Annotated[Optional[str], typer.Option(help="Who is acting, for the records; default your login.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = Options(database_url, actor or _default_actor(), json_output)


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
    from . import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with _connect(opts) as conn:
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
    from . import runner
    from .errors import NothingToDo

    opts: Options = ctx.obj
    found = _discover(opts)
    wait = _lock_wait(opts, lock_timeout)
    # One hold of the lock from the preview to the undo: what the operator agrees to is exactly what runs.
    with _connect(opts) as conn, runner.lock(conn, wait["on_wait"], wait["lock_timeout"]):
        preview = runner.undo_preview(conn, found, to)
        _show_preview(preview)
        if not yes:
            from .cli_prompt import confirm

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
    lock_timeout: LockTimeoutOpt = None,
) -> None:
    """Report applied migration files whose content changed since they ran."""
    from . import runner

    opts: Options = ctx.obj
    found = _discover(opts)
    with _connect(opts) as conn:
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


from . import cli_config, cli_edit, cli_live  # noqa: E402,F401  (register the operator's commands on `app`)


# Options of the root command that may also be given after the command; the valued ones take one value.
GLOBAL_FLAGS = frozenset({"--json"})
GLOBAL_VALUED = frozenset({"--actor", "--database-url"})


def hoist_global_options(argv: Sequence[str], value_options: Mapping[str, int] | None = None) -> list[str]:
    """argv with the global options found after the command moved in front of it, in their order.

    `show risk --json` becomes `--json show risk`, which is the only place click accepts them. value_options
    names every option of any command that takes values (option -> how many), so that a value such as
    `--reason --json` stays where it is. Nothing after `--` moves, nor a valued global option lacking its
    value (click then reports it). Every other token keeps its place and order.
    """
    args = list(argv)
    arity = {**(value_options or {}), **{name: 1 for name in GLOBAL_VALUED}}
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
        i += 1 + _values_after(args[i], arity)  # the root's own options, before the command
    if i >= len(args) or args[i] in ("-", "--"):
        return args
    moved: list[str] = []
    kept: list[str] = []
    j = i + 1
    while j < len(args):
        token = args[j]
        if token == "--":
            kept += args[j:]
            break
        name, has_value, _ = token.partition("=")
        if token in GLOBAL_FLAGS or (has_value and name in GLOBAL_VALUED):
            moved.append(token)
            j += 1
        elif token in GLOBAL_VALUED and j + 1 < len(args):
            moved += args[j : j + 2]
            j += 2
        else:
            n = 1 + _values_after(token, arity)
            kept += args[j : j + n]
            j += n
    return args[:i] + moved + [args[i]] + kept


def _values_after(token: str, arity: Mapping[str, int]) -> int:
    """How many of the following tokens are this option's values (0 for flags, arguments and --opt=value)."""
    if token.startswith("--"):
        return 0 if "=" in token else arity.get(token, 0)
    if token.startswith("-") and len(token) > 1:
        # A cluster of short options (-yo FILE): the first that takes a value takes the rest of the token,
        # or, when it is the last letter, the next tokens.
        for k, letter in enumerate(token[1:], start=2):
            if f"-{letter}" in arity:
                return arity[f"-{letter}"] if k == len(token) else 0
    return 0


def _value_options(command) -> dict[str, int]:
    """Every option that takes values, in every command of the tree: option name -> how many."""
    found: dict[str, int] = {}
    stack = [command]
    while stack:
        cmd = stack.pop()
        for param in cmd.params:
            if getattr(param, "param_type_name", "") == "option" and not param.is_flag and not param.count:
                for name in (*param.opts, *param.secondary_opts):
                    found[name] = max(param.nargs, 1)
        stack.extend(getattr(cmd, "commands", {}).values())
    return found


def _click_exceptions():
    try:
        from typer._click import exceptions  # typer vendors click from 0.2x on
    except ImportError:  # pragma: no cover - older typer on click
        from click import exceptions
    return exceptions


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: errors become one line on stderr, never a traceback.

    click runs without its standalone mode, so that this function alone decides how things end:
    usage errors 2 with click's message, ConfigError its exit_code, a closed stdout 0, Ctrl-C 130.
    """
    clicks = _click_exceptions()
    command = typer.main.get_command(app)
    args = hoist_global_options(sys.argv[1:] if argv is None else argv, _value_options(command))
    try:
        result = command.main(args=args, prog_name=PROG, standalone_mode=False)
        # typer.Exit(n) comes back as n; a command that just returns, as None.
        code = result if type(result) is int else 0
    except (OutputClosed, BrokenPipeError):
        _discard_stdout()
        sys.exit(0)
    except clicks.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except ConfigError as exc:
        from .render import visible  # a message may quote what the operator typed, or a stored name

        typer.echo(f"error: {visible(str(exc), keep_newlines=True)}", err=True)
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
    try:
        sys.stdout.flush()  # now, not at interpreter exit, where a closed pipe could only be reported
    except BrokenPipeError:
        _discard_stdout()  # the command finished: its own exit code stands
    sys.exit(code)
