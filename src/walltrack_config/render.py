"""How the command line shows things: rich tables on a terminal, plain text when piped, JSON on request.

Only the command line uses this module; it prints and nothing else.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from .models import plain


def _stream(stderr: bool):
    return sys.stderr if stderr else sys.stdout


def console(stderr: bool = False):
    """rich, for a terminal only: piped output is plain text and never imports it."""
    from rich.console import Console

    rich = Console(file=_stream(stderr), highlight=False)
    rich.on_broken_pipe = _pipe_closed  # rich would exit 1 on its own; the command line ends a closed pipe with 0
    return rich


def _pipe_closed() -> None:
    raise BrokenPipeError(errno.EPIPE, "output closed")


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(plain(document), indent=2, default=str) + "\n")


def value(v: Any) -> str:
    """A setting as an operator reads it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (list, dict)) or hasattr(v, "model_dump"):
        return json.dumps(plain(v), separators=(", ", ": "))
    if isinstance(v, datetime):
        return when(v)
    return str(v)


def when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, stderr: bool = False, title: str | None = None) -> None:
    cells = [[c if isinstance(c, str) else value(c) for c in row] for row in rows]
    if not _stream(stderr).isatty():
        # Plain, aligned, one line per row: what scripts and grep want.
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        out = ([title] if title else []) + [
            "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [list(headers), *cells]]
        _stream(stderr).write("\n".join(out) + "\n")
        return
    from rich import box
    from rich.table import Table

    grid = Table(*headers, title=title, box=box.SIMPLE_HEAD, header_style="bold", title_justify="left")
    for row in cells:
        grid.add_row(*row)
    console(stderr).print(grid)


def lines(*texts: str, stderr: bool = False) -> None:
    _stream(stderr).write("".join(f"{t}\n" for t in texts))


def changes_table(changes, *, stderr: bool = False, old: str = "old", new: str = "new") -> None:
    if not changes:
        lines("no differences", stderr=stderr)
        return
    table(("setting", old, new), [(c.field, value(c.old), value(c.new)) for c in changes], stderr=stderr)
