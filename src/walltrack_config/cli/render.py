"""How the command line shows things: rich tables on a terminal, plain text when piped, JSON on request.

Only the command line uses this module; it prints and nothing else. Text for a person goes through
`visible` first: names, descriptions, actors and reasons come from the database, and a terminal obeys
the commands hidden in them.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from ..diff import Change

# ESC starts a terminal command (clear the screen, set the window title, write the clipboard), U+009B is
# a one-character CSI, DEL and the other C0/C1 controls move the cursor or vanish; the bidi overrides and
# isolates make text read as something other than what it is. Archived rows predate every check on text.
_UNSAFE = (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ESCAPED = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE} | {
    0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_ESCAPED_BUT_NEWLINES = {c: shown for c, shown in _ESCAPED.items() if c != 0x0A}


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """Text with every control and bidi override character written out as an escape (ESC as \\x1b)."""
    return text.translate(_ESCAPED_BUT_NEWLINES if keep_newlines else _ESCAPED)


def _stream(stderr: bool) -> TextIO:
    return sys.stderr if stderr else sys.stdout


def console(stderr: bool = False) -> Console:
    """rich, for a terminal only: piped output is plain text and never imports it."""
    from rich.console import Console

    class Terminal(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 on its own; the command line ends a closed pipe with 0.
            raise BrokenPipeError(errno.EPIPE, "output closed")

    return Terminal(file=_stream(stderr), highlight=False)


def _plain(value: Any) -> Any:
    """models.plain, imported when first needed: commands that print no settings never load the models."""
    from ..models import plain

    return plain(value)


def _json_value(value: Any) -> Any:
    """What JSON cannot write itself (decimals, models, ids, times), as models.plain or else as text."""
    converted = _plain(value)
    return str(value) if converted is value else converted


def emit_json(document: Any) -> None:
    """One JSON document on stdout."""
    # ensure_ascii writes C1 controls and the bidi characters as \uXXXX too, not just the C0 controls.
    sys.stdout.write(json.dumps(document, indent=2, default=_json_value, ensure_ascii=True) + "\n")


def value(v: Any) -> str:
    """A setting as an operator reads it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (list, dict)) or hasattr(v, "model_dump"):
        return json.dumps(_plain(v), separators=(", ", ": "))
    if isinstance(v, datetime):
        return when(v)
    return visible(str(v))


def when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, stderr: bool = False,
          title: str | None = None) -> None:
    """Rows under their headers: a rich table on a terminal, plain aligned text (one line per row) otherwise."""
    # A newline inside a cell would break the row's alignment, and could fake a row of its own.
    cells = [[visible(c if isinstance(c, str) else value(c)) for c in row] for row in rows]
    title = visible(title) if title is not None else None
    if not _stream(stderr).isatty():
        # Plain, aligned, one line per row: what scripts and grep want.
        widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
        out = ([title] if title else []) + [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [list(headers), *cells]]
        _stream(stderr).write("\n".join(out) + "\n")
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # Text, not str: rich reads a str as markup, so a name like '[link=…]' would become a hyperlink and a
    # stray '[/x]' would raise.
    grid = Table(*headers, title=Text(title) if title is not None else None, box=box.SIMPLE_HEAD,
                 header_style="bold", title_justify="left")
    for row in cells:
        grid.add_row(*map(Text, row))
    console(stderr).print(grid)


def lines(*texts: str, stderr: bool = False) -> None:
    _stream(stderr).write("".join(f"{visible(t, keep_newlines=True)}\n" for t in texts))


def changes_table(changes: Sequence[Change], *, stderr: bool = False, old: str = "old", new: str = "new") -> None:
    if not changes:
        lines("no differences", stderr=stderr)
        return
    table(("setting", old, new), [(c.field, value(c.old), value(c.new)) for c in changes], stderr=stderr)
