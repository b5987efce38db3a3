"""Approvals: `policy show|set`, `request`, `requests`, `approve`, `reject`; and what `activate` says when a draft
lacks the approvals its domain's policy asks for.

Thin wrappers over walltrack_config.changes, printed through `render`. The database's trigger is the only gate:
what is checked here (before `activate` asks its question) only saves an operator a question whose answer the
database would refuse anyway, and says what to run instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import Options, app, connect_migrated, policy_app
from .args import Domain, DomainArg, ReasonOpt

if TYPE_CHECKING:
    import psycopg

    from ..changes import ChangeRequest
    from ..lifecycle import ConfigRow

SHORT = 8  # characters of an id shown in a command to copy (6+ are accepted wherever an id is asked for)
MAX_APPROVALS = 5

RequestArg = Annotated[str, typer.Argument(metavar="REQUEST", help="A change request: id or id prefix (6+).",
                                           show_default=False)]
CommentOpt = Annotated[str | None, typer.Option(help="A comment, for the record.")]


def connect_changes(opts: Options) -> psycopg.Connection[Any]:
    """A connection to a database with approvals, schedules and webhooks (V14)."""
    from .. import schema

    return connect_migrated(opts, schema.CHANGES)


def short(value: object) -> str:
    return str(value)[:SHORT]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- policy ------------------------------------------------------------------------------------------------------


@policy_app.command("show")
def policy_show(ctx: typer.Context) -> None:
    """How many approvals each domain needs before a draft goes live (0: none)."""
    from .. import changes
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        found = changes.policies(conn)
    if opts.json:
        return render.emit_json([p.json() for p in found])
    render.table(("domain", "approvals", "changed", "by"),
                 [(p.domain, str(p.approvals), render.when(p.updated_at), p.updated_by or "") for p in found])


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    domain: DomainArg,
    approvals: Annotated[int, typer.Argument(metavar="N", min=0, max=MAX_APPROVALS, show_default=False,
                                             help=f"Approvals needed, 0 to {MAX_APPROVALS} (0: none).")],
    reason: ReasonOpt = None,
) -> None:
    """Set how many people other than the requester must approve a draft of DOMAIN before it goes live."""
    from .. import changes
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        before = required(conn, domain.value)
        policy = changes.set_policy(conn, domain.value, approvals, actor=opts.actor, reason=reason)
    if opts.json:
        return render.emit_json(policy.json())
    if policy.approvals == 0:
        now = "needs no approval: an operator's activate makes a draft live"
    else:
        now = (f"needs {_plural(policy.approvals, 'approval')} by someone other than the requester before a "
               "draft goes live")
    render.lines(f"{policy.domain} {now} (was {before})")


def required(conn: psycopg.Connection[Any], domain: str) -> int:
    from .. import changes

    return next((p.approvals for p in changes.policies(conn) if p.domain == domain), 0)


# -- requests ----------------------------------------------------------------------------------------------------


def _request_line(r: ChangeRequest) -> str:
    draft = f"'{r.draft_name}'" if r.draft_name is not None else "(gone)"
    return f"request {r.id} for {r.domain} draft {draft} ({short(r.config_id)}) v{r.version}"


def _needs(r: ChangeRequest) -> str:
    """What a pending request still needs, and the command that gives it."""
    if r.status != "pending":
        return f"it is {r.status}"
    if not r.current:
        return "the draft changed since it was requested: request it again"
    if r.missing <= 0:
        return f"approved; make it live with: walltrack-config activate {r.domain} --draft {short(r.config_id)}"
    others = ", ".join([r.requested_by, *r.approved_by])
    return (f"needs {_plural(r.missing, 'more approval')} from someone other than {others}: "
            f"walltrack-config approve {short(r.id)}")


@app.command("request")
def request_command(
    ctx: typer.Context,
    domain: DomainArg,
    row: Annotated[str | None, typer.Argument(metavar="[ROW]", show_default=False,
                                              help="The draft: id, id prefix (6+) or name; default the only draft.")
                   ] = None,
    reason: Annotated[str, typer.Option(help="Why this change: what the approvers read.", show_default=False)] = "",
) -> None:
    """Ask for approval of a draft, as it is now: an edit afterwards voids the request."""
    from .. import changes, lifecycle
    from . import render

    opts: Options = ctx.obj
    if not reason.strip():
        raise typer.BadParameter("say why, for the approvers: --reason TEXT", param_hint="--reason")
    with connect_changes(opts) as conn:
        found = lifecycle.resolve(conn, domain.value, row)
        made = changes.request(conn, domain.value, found.id, found.version, actor=opts.actor, reason=reason)
    if opts.json:
        return render.emit_json(made.json())
    render.lines(f"{_request_line(made)} created")
    if made.required == 0:
        render.lines(f"{domain.value} needs no approval (policy 0): activate it at once with: "
                     f"walltrack-config activate {domain.value} --draft {short(made.config_id)}")
    else:
        render.lines(_needs(made))


@app.command("requests")
def requests_command(
    ctx: typer.Context,
    domain: Annotated[Domain | None, typer.Argument(metavar="[DOMAIN]", show_default=False,
                                                   help="Only this domain's (default: every domain).")] = None,
    all: Annotated[bool, typer.Option("--all", help="Decided and voided requests too, not just pending ones.")
                   ] = False,
) -> None:
    """Change requests, newest first: pending ones by default, with the approvals each has and needs."""
    from .. import changes
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        found = changes.requests(conn, domain=domain.value if domain else None, status=None if all else "pending")
    if opts.json:
        return render.emit_json([r.json() for r in found])
    if not found:
        return render.lines("no change requests" if all else "no pending change requests")
    render.table(("id", "domain", "draft", "version", "status", "approvals", "requested by", "at", "reason"),
                 [(str(r.id), r.domain, r.draft_name if r.draft_name is not None else "(gone)", f"v{r.version}",
                   r.status if r.current or r.status != "pending" else "pending (draft changed)",
                   f"{len(r.approved_by)}/{r.required}", r.requested_by, render.when(r.created_at), r.reason)
                  for r in found])


@app.command()
def approve(ctx: typer.Context, request: RequestArg, comment: CommentOpt = None) -> None:
    """Approve a change request (not your own): with enough approvals, its draft may go live."""
    from .. import changes
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        before = changes.get(conn, request)
        done = changes.approve(conn, before.id, actor=opts.actor, comment=comment)
        if not opts.json:
            _show_changes(conn, done)
    if opts.json:
        return render.emit_json(done.json())
    again = opts.actor in before.approved_by
    verb = f"had already been approved by {opts.actor}" if again else f"approved by {opts.actor}"
    render.lines(f"{_request_line(done)} {verb}: {len(done.approved_by)} of {done.required}", _needs(done))


@app.command()
def reject(
    ctx: typer.Context,
    request: RequestArg,
    comment: Annotated[str, typer.Option(help="Why not: what the requester reads.", show_default=False)] = "",
) -> None:
    """Reject a change request: it is closed, and its draft cannot go live on it."""
    from .. import changes
    from . import render

    opts: Options = ctx.obj
    if not comment.strip():
        raise typer.BadParameter("say why, for the requester: --comment TEXT", param_hint="--comment")
    with connect_changes(opts) as conn:
        found = changes.get(conn, request)
        done = changes.reject(conn, found.id, actor=opts.actor, comment=comment)
    if opts.json:
        return render.emit_json(done.json())
    render.lines(f"{_request_line(done)} rejected by {opts.actor}")


def _show_changes(conn: psycopg.Connection[Any], r: ChangeRequest) -> None:
    """What the request makes live: the draft against the live row (while the draft is still the one requested)."""
    from .. import lifecycle
    from ..diff import diff_rows
    from . import render

    if not r.current:
        return
    draft = lifecycle.get(conn, r.domain, r.config_id)
    live = lifecycle.active_row(conn, r.domain)
    render.lines(f"{r.domain}: '{live.name}' (live) -> '{draft.name}' (draft, v{draft.version})")
    render.changes_table(diff_rows(live, draft), old="live now", new="after")


# -- what activate says ----------------------------------------------------------------------------------------------


def check_approved(conn: psycopg.Connection[Any], domain: str, row: ConfigRow) -> None:
    """Before activate asks: refused, saying what is missing and what to run, when the domain's policy asks for
    approvals the draft lacks. (The database checks again as the row goes live: that check is the one that holds.)
    """
    needed = required(conn, domain)
    if needed and approved(conn, domain, row, needed) is None:
        raise approval_missing(conn, domain, row, needed)


def approved(conn: psycopg.Connection[Any], domain: str, row: ConfigRow, needed: int) -> ChangeRequest | None:
    """The pending request for this draft, as it is now, that has the approvals needed; None when there is none."""
    for r in _pending_for(conn, domain, row):
        if len(r.approved_by) >= needed:
            return r
    return None


def _pending_for(conn: psycopg.Connection[Any], domain: str, row: ConfigRow) -> list[ChangeRequest]:
    from .. import changes

    return [r for r in changes.requests(conn, domain=domain, status="pending")
            if r.config_id == row.id and r.version == row.version and r.current]


def approval_missing(conn: psycopg.Connection[Any], domain: str, row: ConfigRow,
                     needed: int | None = None) -> Exception:
    """The refusal of an activation that lacks approvals, in one paragraph: what is missing, and what to run."""
    from ..errors import InvalidTransition
    from ..lifecycle import table_of

    needed = required(conn, domain) if needed is None else needed
    text = (f"{missing_approvals(conn, domain, row, needed)}, then run this activate again. In an emergency an admin "
            f"may activate without approval, recorded as break glass: walltrack-config activate {domain} --draft "
            f"{short(row.id)} --break-glass --reason TEXT.")
    return InvalidTransition(table_of(domain), text, id=row.id)


def missing_approvals(conn: psycopg.Connection[Any], domain: str, row: ConfigRow, needed: int) -> str:
    """'<domain> needs N approvals before draft ... goes live: <what it has>. <what to run>' (no final stop)."""
    head = (f"{domain} needs {_plural(needed, 'approval')} before draft '{row.name}' ({short(row.id)}) "
            f"v{row.version} goes live")
    pending = _pending_for(conn, domain, row)
    if pending:
        r = pending[0]
        given = f"{len(r.approved_by)} given" + (f" ({', '.join(r.approved_by)})" if r.approved_by else "")
        return (f"{head}: {given}; request {short(r.id)} by {r.requested_by} is pending. Someone other than "
                f"{', '.join([r.requested_by, *r.approved_by])} approves it with: walltrack-config approve "
                f"{short(r.id)}")
    return (f"{head}, and no request for v{row.version} is pending. Ask for approval with: walltrack-config "
            f"request {domain} {short(row.id)} --reason TEXT; someone else approves it (walltrack-config approve "
            "REQUEST)")
