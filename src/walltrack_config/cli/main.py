"""The console entry point: arguments in, one exit code out; the only place errors become messages."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import typer
from typer.core import TyperOption

from ..errors import ConfigError
from . import (  # noqa: F401  (imported to register their commands on the app)
    changes,
    config,
    db,
    edit,
    exchange,
    fleet,
    principals,
    schedules,
    serve,
    watch,
    webhooks,
)
from .app import PROG, OutputClosed, app

if TYPE_CHECKING:
    from typer._click import Command

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


def _value_options(command: Command) -> dict[str, int]:
    """Every option that takes values, in every command of the tree: option name -> how many."""
    found: dict[str, int] = {}
    stack = [command]
    while stack:
        cmd = stack.pop()
        for param in cmd.params:
            if isinstance(param, TyperOption) and not param.is_flag and not param.count:
                for name in (*param.opts, *param.secondary_opts):
                    found[name] = max(param.nargs, 1)
        stack.extend(getattr(cmd, "commands", {}).values())
    return found


def _click_exceptions() -> ModuleType:
    try:
        from typer._click import exceptions  # typer vendors click from 0.2x on
    except ImportError:  # pragma: no cover - older typer on click
        return importlib.import_module("click.exceptions")
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
            from .render import visible  # the server's message may quote stored text

            typer.echo(f"error: database: {visible(' '.join(str(exc).split()))}", err=True)
            sys.exit(2)
        raise
    try:
        sys.stdout.flush()  # now, not at interpreter exit, where a closed pipe could only be reported
    except BrokenPipeError:
        _discard_stdout()  # the command finished: its own exit code stands
    sys.exit(code)
