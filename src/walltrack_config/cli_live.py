"""`walltrack-config watch`: each configuration change, printed as it arrives."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from typing import Annotated, Optional

import typer

from .cli import Options, app
from .cli_args import Domain


@app.command()
def watch(
    ctx: typer.Context,
    domains: Annotated[Optional[list[Domain]], typer.Argument(metavar="[DOMAIN]...", help="Domains to watch (default: all).")] = None,
) -> None:
    """Print each change as it goes live (with --json: one object per line); Ctrl-C stops."""
    from . import db, render
    from .diff import diff
    from .live import LiveConfig
    from .models import plain

    opts: Options = ctx.obj
    chosen = [d.value for d in domains] if domains else [d.value for d in Domain]
    live = LiveConfig(db.resolve_url(opts.database_url), domains=chosen)

    def printer(domain: str):
        def show(old, new) -> None:
            row, changes = live.row(domain), diff(old, new)
            if opts.json:
                event = {"domain": domain, "id": str(row.id), "version": row.version,
                         "changes": [{"field": c.field, "old": plain(c.old), "new": plain(c.new)} for c in changes]}
                sys.stdout.write(json.dumps(event) + "\n")
            else:
                fields = ", ".join(f"{c.field} {render.value(c.old)} -> {render.value(c.new)}" for c in changes)
                sys.stdout.write(f"{datetime.now().strftime('%H:%M:%S')}  {domain}  {row.id} v{row.version}  "
                                 f"{fields or 'same settings'}\n")
            sys.stdout.flush()
        return show

    for domain in chosen:
        live.subscribe(domain, printer(domain))
    live.start()
    # On stderr in both modes: stdout stays one event per line, and a script can wait for this line.
    render.lines(f"watching {', '.join(chosen)} ({live.health().source}); Ctrl-C to stop", stderr=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        live.stop()
