"""Users and API tokens: user add/list/disable/enable/set-role/set-password/history, token create/list/revoke.

Thin wrappers over walltrack_config.principals, printed through `render`. A password is read from a terminal
(asked twice, hidden) or, with --password-stdin, as one line of stdin; never from an argument, where other
users of the machine and the shell's history would see it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..domains import Role
from ..errors import FieldError, InvalidValue
from .app import Options, connect_migrated, token_app, user_app
from .args import one_of

if TYPE_CHECKING:
    import psycopg

    from ..principals import Token, User

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="1-64 of A-Z a-z 0-9 . _ @ -, from a letter or digit.", show_default=False)
]
RoleOpt = Annotated[Role, typer.Option("--role", help=f"{one_of(Role)}.", show_default=False)]
RoleArg = Annotated[Role, typer.Argument(metavar="ROLE", help=f"{one_of(Role)}.", show_default=False)]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password as one line of stdin.")]


def _connect(opts: Options) -> psycopg.Connection[Any]:
    from .. import schema

    return connect_migrated(opts, schema.PRINCIPALS)


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or asked twice on a terminal; refused when neither is possible."""
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise InvalidValue(
            "user", [FieldError("password", "no terminal to ask it on; give it on stdin with --password-stdin")]
        )
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    return password


def _show_users(opts: Options, found: list[User]) -> None:
    from . import render

    if opts.json:
        return render.emit_json([u.columns() for u in found])
    render.table(
        ("name", "role", "status", "last sign-in", "changed", "by"),
        [
            (
                u.name,
                u.role.value,
                "disabled" if u.disabled else "enabled",
                render.when(u.last_login_at),
                render.when(u.updated_at),
                u.updated_by,
            )
            for u in found
        ],
    )


def _show_user(opts: Options, user: User, done: str) -> None:
    from . import render

    if opts.json:
        return render.emit_json(user.columns())
    state = "disabled" if user.disabled else "enabled"
    render.lines(f"user {user.name} {done}: role {user.role.value}, {state}")


@user_app.command("add")
def user_add(ctx: typer.Context, name: NameArg, role: RoleOpt, password_stdin: PasswordStdin = False) -> None:
    """Add a user who signs in with a password (asked twice, hidden; or --password-stdin)."""
    from .. import principals
    from ..credentials import name_problems, password_problems

    opts: Options = ctx.obj
    # Name and password are checked before the database is reached, and before a password is asked for.
    if problems := name_problems(name):
        raise InvalidValue("user", problems)
    password = read_password(password_stdin)
    if problems := password_problems(password):
        raise InvalidValue("user", problems)
    with _connect(opts) as conn:
        user = principals.add_user(conn, name, role, password, actor=opts.actor)
    _show_user(opts, user, "added")


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """Every user, with role and status (never a password or its hash)."""
    from .. import principals

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        found = principals.users(conn)
    _show_users(opts, found)


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: NameArg) -> None:
    """The user can no longer sign in; their sessions end at once."""
    from .. import principals

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        user = principals.disable_user(conn, name, actor=opts.actor)
    _show_user(opts, user, "disabled")


@user_app.command("enable")
def user_enable(ctx: typer.Context, name: NameArg) -> None:
    """The user may sign in again."""
    from .. import principals

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        user = principals.enable_user(conn, name, actor=opts.actor)
    _show_user(opts, user, "enabled")


@user_app.command("set-role")
def user_set_role(ctx: typer.Context, name: NameArg, role: RoleArg) -> None:
    """Give a user another role; their sessions have it at once."""
    from .. import principals

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        user = principals.set_role(conn, name, role, actor=opts.actor)
    _show_user(opts, user, "updated")


@user_app.command("set-password")
def user_set_password(ctx: typer.Context, name: NameArg, password_stdin: PasswordStdin = False) -> None:
    """Give a user a new password; their sessions end."""
    from .. import principals
    from ..credentials import password_problems

    opts: Options = ctx.obj
    password = read_password(password_stdin)
    if problems := password_problems(password):
        raise InvalidValue("user", problems)
    with _connect(opts) as conn:
        user = principals.set_password(conn, name, password, actor=opts.actor)
    _show_user(opts, user, "has a new password")


@user_app.command("history")
def user_history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 20,
) -> None:
    """Every change to users, API tokens and sessions, newest first."""
    from .. import principals
    from . import render

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        entries = principals.audit(conn, limit)
    if opts.json:
        return render.emit_json(entries)
    if not entries:
        return render.lines("no changes to users or tokens recorded")
    render.table(
        ("when", "who", "action", "kind", "name", "changed"),
        [
            (
                render.when(_moment(e["performed_at"])),
                str(e["performed_by"]),
                str(e["action"]),
                str(e["principal_kind"]),
                str(e["principal_name"] or ""),
                ", ".join(e["changed_fields"] or []) if isinstance(e["changed_fields"], list) else "",
            )
            for e in entries
        ],
    )


def _moment(text: object) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text) if isinstance(text, str) else None


# -- tokens ---------------------------------------------------------------------------------------------------------


def _token_line(token: Token) -> str:
    from . import render

    expires = f"expires {render.when(token.expires_at)}" if token.expires_at else "never expires"
    role = token.role.value if token.role else "?"
    return f"token {token.name} (role {role}, {expires})"


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: NameArg,
    role: RoleOpt,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime: 30m, 12h, 90d or 2w, at most 10 years; default never.")
    ] = None,
) -> None:
    """Create an API token and print it, once: only a hash of it is kept."""
    from .. import principals
    from . import render

    opts: Options = ctx.obj
    lifetime = principals.parse_duration(expires) if expires is not None else None
    with _connect(opts) as conn:
        token, secret = principals.create_token(conn, name, role, actor=opts.actor, expires=lifetime)
    if opts.json:
        render.emit_json({"token": secret, **token.columns()})
    else:
        render.lines(secret)
    render.lines(f"{_token_line(token)} created; it is shown this once and never again: store it now", stderr=True)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    all: Annotated[bool, typer.Option("--all", help="Revoked tokens too.")] = False,
) -> None:
    """The API tokens: name, role, expiry, last use (never a secret or its hash)."""
    from .. import principals
    from . import render

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        found = principals.tokens(conn, include_revoked=all)
    if opts.json:
        return render.emit_json([t.columns() for t in found])

    def status(t: Token) -> str:
        return "revoked" if t.revoked_at else "active" if t.active else "expired"

    render.table(
        ("name", "role", "status", "expires", "last used", "created", "by", "prefix"),
        [
            (
                t.name,
                t.role.value if t.role else "",
                status(t),
                render.when(t.expires_at) or "never",
                render.when(t.last_used_at),
                render.when(t.created_at),
                t.created_by,
                f"{principals.TOKEN_PREFIX}{t.public_id}_",
            )
            for t in found
        ],
    )


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, name: NameArg) -> None:
    """Revoke an API token: it stops working at once, everywhere."""
    from .. import principals
    from . import render

    opts: Options = ctx.obj
    with _connect(opts) as conn:
        token = principals.revoke_token(conn, name, actor=opts.actor)
    if opts.json:
        return render.emit_json(token.columns())
    render.lines(f"{_token_line(token)} revoked")
