"""`walltrack-config watch`: each configuration change, printed as it arrives."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import Options, app
from .args import Domain

if TYPE_CHECKING:
    from ..live import LiveRow


@app.command()
def watch(
    ctx: typer.Context,
    domains: Annotated[list[Domain] | None, typer.Argument(metavar="[DOMAIN]...",
                                                          help="Domains to watch (default: all).")] = None,
) -> None:
    """Print each change as it goes live (with --json: one object per line); Ctrl-C stops."""
    from .. import db
    from ..diff import diff
    from ..live import LiveConfig
    from ..models import plain
    from . import render

    opts: Options = ctx.obj
    chosen = [d.value for d in domains] if domains else [d.value for d in Domain]
    live = LiveConfig(db.resolve_url(opts.database_url), domains=chosen)

    closed = threading.Event()  # stdout went away (`watch | head -3`): stop as other Unix tools do

    def show(old: LiveRow[Any], new: LiveRow[Any]) -> None:
        try:
            write(old, new)
        except BrokenPipeError:
            closed.set()

    def write(old: LiveRow[Any], new: LiveRow[Any]) -> None:
        changes = diff(old.settings, new.settings)
        if opts.json:
            event = {"domain": new.domain, "id": str(new.id), "version": new.version, "name": new.name,
                     "activation": new.activation, "actor": new.actor, "reason": new.reason,
                     "changes": [{"field": c.field, "old": plain(c.old), "new": plain(c.new)} for c in changes]}
            sys.stdout.write(json.dumps(event) + "\n")
        else:
            fields = ", ".join(f"{c.field} {render.value(c.old)} -> {render.value(c.new)}" for c in changes)
            why = f" ({new.reason})" if new.reason else ""
            line = (f"{datetime.now().strftime('%H:%M:%S')}  {new.domain}  '{new.name}' {new.id} v{new.version}"
                    f"  by {new.actor or '?'}{why}  {fields or 'same settings'}")
            sys.stdout.write(render.visible(line) + "\n")
        sys.stdout.flush()

    def connection(connected: bool, error: str | None) -> None:
        # On stderr: stdout stays one change per line.
        render.lines("reconnected; settings reloaded" if connected
                     else f"lost the database ({error}); keeping the last settings, reconnecting", stderr=True)

    # The library logs outages as warnings: watch says them its own way (below), and shows only its errors
    # (a live row it cannot read) as they come.
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("error: %(message)s"))
    library = logging.getLogger("walltrack_config.live")
    library.addHandler(handler)
    library.propagate = False

    for domain in chosen:
        live.subscribe(domain, show)
    live.on_connection(connection)
    live.start()
    # On stderr in both modes: stdout stays one event per line, and a script can wait for this line.
    render.lines(f"watching {', '.join(chosen)} ({live.health().source}); Ctrl-C to stop", stderr=True)
    try:
        closed.wait()
    except KeyboardInterrupt:
        pass
    finally:
        live.stop()
    if closed.is_set():
        raise BrokenPipeError  # main ends quietly with 0
