"""export and import: the active settings as a file a person reviews in git, and such a file back as drafts.

Each wraps the library's exchange module and prints through `render`; it adds no rule.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import NothingToDo
from .app import Options, app, connect_migrated
from .args import Domain, Format, ReasonOpt, YesOpt
from .prompt import confirm

if TYPE_CHECKING:
    from ..exchange import ImportPlan


@app.command()
def export(
    ctx: typer.Context,
    domains: Annotated[list[Domain] | None, typer.Argument(help="Domains to export (default: all).")] = None,
    format: Annotated[Format, typer.Option("--format", help="yaml or json (--json means json).")] = Format.YAML,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """The active settings as a file a person can review in git."""
    from .. import exchange
    from . import render

    opts: Options = ctx.obj
    with connect_migrated(opts) as conn:
        document = exchange.export_document(conn, [d.value for d in domains or []])
    text = exchange.dumps(document, "json" if opts.json else format.value)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    render.lines(f"exported {len(document['domains'])} domains to {output}", stderr=opts.json)


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A file from export.")],
    activate_: Annotated[bool, typer.Option("--activate", help="Make the new drafts live too.")] = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
) -> None:
    """Drafts for the domains whose values differ from the file; all checked before any is written."""
    from .. import exchange, lifecycle
    from . import render

    opts: Options = ctx.obj
    document = exchange.loads(exchange.read_file(file), str(file))

    def preview(conn: Any) -> list[ImportPlan]:
        plans = exchange.plan(conn, document, str(file))
        for p in plans:
            render.lines(f"{p.domain}: '{p.active.name}' (live) -> {file.name}", stderr=opts.json)
            render.changes_table(p.changes, stderr=opts.json, old="live now", new="file")
        return plans

    with connect_migrated(opts) as conn:
        if activate_ and not yes:
            plans = preview(conn)
            if not confirm(f"import and activate {len(plans)} domain(s)?"):
                raise NothingToDo("not done: nothing was imported")
            # apply refuses if a live row changed since the preview: what goes live is what was shown.
            done = exchange.apply(conn, plans, actor=opts.actor, reason=reason, activate=True)
        else:
            with conn.transaction():
                lifecycle.lock_writes(conn)  # no question to wait for: plan and write with nothing in between
                done = exchange.apply(conn, preview(conn), actor=opts.actor, reason=reason, activate=activate_)
    if opts.json:
        return render.emit_json([r.columns() for r in done])
    for r in done:
        render.lines(f"{r.domain}: {'activated' if activate_ else 'draft'} '{r.name}' ({r.id})")
