"""How the command line shows things: rich tables on a terminal, plain text when piped, JSON on request.

Only the command line uses this module; it prints and nothing else.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from .models import plain


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    # Piped: no colour, no wrapping, so scripts and `grep` see one line per row.
    return Console(file=stream, highlight=False, soft_wrap=not terminal, width=None if terminal else 10_000,
                   no_color=not terminal)


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
    from rich import box
    from rich.table import Table

    out = console(stderr)
    grid = Table(*headers, title=title, box=box.SIMPLE_HEAD if out.is_terminal else None,
                 header_style="bold" if out.is_terminal else "", title_justify="left")
    for row in rows:
        grid.add_row(*(value(cell) if not isinstance(cell, str) else cell for cell in row))
    out.print(grid)


def lines(*texts: str, stderr: bool = False) -> None:
    out = console(stderr)
    for text in texts:
        out.print(text, markup=False)


def changes_table(changes, *, stderr: bool = False, old: str = "old", new: str = "new") -> None:
    if not changes:
        lines("no differences", stderr=stderr)
        return
    table(("setting", old, new), [(c.field, value(c.old), value(c.new)) for c in changes], stderr=stderr)
