"""The command line's shared context: the typer app and its groups, the global options, connections.

Command modules register on `app` and its groups (`db_app`, `embedded_app`, `user_app`, `token_app`,
`policy_app`, `schedule_app`, `webhook_app`) and
import from here; nothing here imports them (cli.main does, to register them). Heavy imports (psycopg, rich,
pglast) happen inside commands so --help stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    import psycopg
    from typer._click import Context as ClickContext  # typer's own click (typer.Context is a subclass)

PROG = "walltrack-config"


class OutputClosed(Exception):
    """stdout's reader went away (`| head -1`): the command ends quietly, as other Unix tools do."""


class _Group(TyperGroup):
    """The root command. click would turn EPIPE into a silent exit 1; here it becomes OutputClosed for `main`.

    make_context covers what the root prints itself (--help, --version); invoke covers every command.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: ClickContext | None = None,
                     **extra: Any) -> ClickContext:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError as exc:
            raise OutputClosed() from exc

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise OutputClosed() from exc


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
user_app = typer.Typer(help="People who sign in to the server, and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for programs (each with a role of its own).", no_args_is_help=True)
policy_app = typer.Typer(help="How many approvals each domain needs before a draft goes live.",
                         no_args_is_help=True)
schedule_app = typer.Typer(help="Activations planned for a later time: list, cancel, run the due ones.",
                           no_args_is_help=True)
webhook_app = typer.Typer(help="HTTP endpoints told of every change (requests, activations, schedules...).",
                          no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(embedded_app, name="embedded")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(policy_app, name="policy")
app.add_typer(schedule_app, name="schedule")
app.add_typer(webhook_app, name="webhook")


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
        from .. import __version__ as number
    typer.echo(f"{PROG} {number}")
    raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URL; default $WALLTRACK_DATABASE_URL, else the embedded server."),
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Who is acting, for the records; default your login.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = Options(database_url, actor or _default_actor(), json_output)


def connect(opts: Options) -> psycopg.Connection[Any]:
    """A connection to the database the options name (or the embedded one)."""
    from .. import db

    return db.connect(db.resolve_url(opts.database_url))


def connect_migrated(opts: Options, needed: int | None = None) -> psycopg.Connection[Any]:
    """A connection to a database migrated far enough for these commands (else: what to run).

    `needed`: the schema version they need, when above the config commands' (schema.NEEDED)."""
    from .. import schema

    conn = connect(opts)
    try:
        schema.require(conn, schema.NEEDED if needed is None else needed)
        # A change waits for another one to commit, but not forever: an operator under pressure is told.
        conn.execute("SET lock_timeout = '10s'")
    except BaseException:
        conn.close()
        raise
    return conn
