"""`walltrack-config edit`: a draft as YAML in $EDITOR, checked on save, kept when it cannot be applied.

When the draft changed under the operator (or anything else refuses the save after they edited), their
file is kept and `edit --from FILE` resumes it: only the fields they changed are applied, over the draft
as it is now, and fields someone else changed meanwhile are pointed out before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConfigError, InvalidFile, InvalidValue, NothingToDo
from .app import Options, app, connect_migrated
from .args import DomainArg, DraftOpt, ReasonOpt

if TYPE_CHECKING:
    from ..lifecycle import ConfigRow

_HEADER = re.compile(r"^# (\w+) draft ([0-9a-f-]{36}), version (\d+)\.")
_ERROR_LINES = ("# ERROR:", "# Fix it and save again.", "# NOTE:")


@app.command()
def edit(
    ctx: typer.Context,
    domain: DomainArg,
    draft_id: DraftOpt = None,
    reason: ReasonOpt = None,
    from_: Annotated[Path | None, typer.Option("--from", help="Resume an edit kept after a refused save.",
                                                  dir_okay=False)] = None,
) -> None:
    """Open a draft in $EDITOR as YAML; it is checked on save and reopened with the error when invalid."""
    from .. import audit, exchange, lifecycle
    from ..models import plain
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        row = lifecycle.resolve(conn, domain.value, draft_id)
        current = {"name": row.name, "description": row.description} | plain(row.settings)
        base, note = current, None
        if from_ is None:
            text = _template(domain.value, row, lifecycle.comments(conn, domain.value), current)
        else:
            text = exchange.read_text(_read(from_), str(from_))
            header = _HEADER.match(text)
            if header and header[1] == domain.value and header[2] == str(row.id) and int(header[3]) != row.version:
                base = _labels_and_settings(audit.snapshot(conn, domain.value, row.id, int(header[3])), current)
                note = _moved(base, current)
            text = _HEADER.sub(f"# {domain.value} draft {row.id}, version {row.version}.", text, count=1)
        error = None
        while True:
            shown = (f"# ERROR: {error}\n# Fix it and save again.\n" if error else "") + (note or "") + text
            edited = _run_editor(shown)
            if edited is None and from_ is not None and error is None:
                edited = shown  # a resumed file closed unchanged: the operator wants it as it is
            if edited is None:
                raise NothingToDo("edit abandoned: nothing was saved")
            body = "".join(line for line in edited.splitlines(keepends=True) if not line.startswith(_ERROR_LINES))
            try:
                values = exchange.loads(body, "the edited draft")
                # Only what the operator changed, so an edit resumed over a newer draft reverts nobody's work.
                changes = {k: v for k, v in values.items() if base.get(k, object()) != v}
                new = lifecycle.edit(conn, domain.value, row.id, row.version, changes, actor=opts.actor, reason=reason)
                break
            except (InvalidFile, InvalidValue) as exc:
                if body == text:
                    raise  # saved again unchanged: the operator gave up on fixing it
                error, text = str(exc), body
            except ConfigError:
                _keep(body, domain.value, row.id)
                raise
    if new.version == row.version:
        raise NothingToDo(f"nothing to change: draft '{row.name}' is as it was")
    if opts.json:
        return render.emit_json(new.columns())
    render.lines(f"draft '{new.name}' is now at version {new.version}")


def _template(domain: str, row: ConfigRow, notes: dict[str, str], values: dict[str, Any]) -> str:
    from .. import exchange
    from ..models import meaning_and_unit

    lines = [f"# {domain} draft {row.id}, version {row.version}. Save to apply; quit without saving to abandon."]
    for key, value in values.items():
        meaning, unit = meaning_and_unit(notes.get(key))
        lines += [f"# {meaning}" + (f" ({unit})" if unit else ""), exchange.dumps({key: value}).rstrip()]
    return "\n".join(lines) + "\n"


def _labels_and_settings(snapshot: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """The row as the operator first saw it (from the audit trail), keyed like `current`."""
    if snapshot is None:
        return current
    return {key: snapshot.get(key) for key in current}


def _moved(base: dict[str, Any], current: dict[str, Any]) -> str | None:
    """A note naming the fields someone else changed since the operator's edit began."""
    from .render import value

    moved = [f"# NOTE:   {k}: {value(base[k])} -> {value(current[k])}\n" for k in current if base.get(k) != current[k]]
    if not moved:
        return None
    return ("# NOTE: since your edit began, someone changed these fields of the draft (only the fields you\n"
            "# NOTE: changed are applied; the others keep the new values):\n" + "".join(moved))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidFile(str(path), exc.strerror or "cannot be read") from exc


def _keep(body: str, domain: str, row_id: Any) -> None:
    """Save the operator's work where they can find it, and say how to resume."""
    import sys
    import tempfile

    handle, name = tempfile.mkstemp(prefix=f"walltrack-edit-{domain}-{str(row_id)[:8]}-", suffix=".yaml")
    with open(handle, "w", encoding="utf-8") as kept:
        kept.write(body)
    sys.stderr.write(f"your edit is kept in {name}; resume it with: walltrack-config edit {domain} --draft {row_id} "
                     f"--from {name}\n")


def _run_editor(text: str) -> str | None:
    """The text after $VISUAL or $EDITOR (default vi) edited it; None when it was not saved."""
    import os
    import shlex
    import subprocess
    import tempfile

    from ..errors import UsageError

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as handle:
        handle.write(text)
    path = Path(handle.name)
    try:
        before = path.stat().st_mtime_ns
        try:
            done = subprocess.run([*shlex.split(editor), str(path)])
        except OSError as exc:
            raise UsageError(f"cannot start the editor {editor!r}: {exc.strerror}; set $EDITOR") from exc
        if done.returncode != 0:
            raise NothingToDo(f"edit abandoned: {editor} exited with status {done.returncode}")
        from .. import exchange

        after = exchange.read_text(path.read_bytes(), "the edited draft")
        return after if after != text or path.stat().st_mtime_ns != before else None
    finally:
        path.unlink(missing_ok=True)
