"""Webhooks: `webhook add|list|remove|deliveries`.

Thin wrappers over walltrack_config.webhooks. A webhook's secret (what its deliveries are signed with) is shown
once, when it is added, as a token is; `list` never shows it. A secret of one's own is read from stdin
(--secret-stdin), never from an argument, where other users of the machine and the shell's history would see it;
so may the URL be (--url-stdin), since Slack's and Discord's are credentials too.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from .app import Options, webhook_app
from .args import one_of
from .changes import connect_changes

if TYPE_CHECKING:
    from ..webhooks import Delivery


class HookFormat(StrEnum):
    """What a delivery's body looks like (webhooks.FORMATS)."""

    JSON = "json"
    SLACK = "slack"
    DISCORD = "discord"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


HookNameArg = Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                            help="1-64 of A-Z a-z 0-9 . _ @ -, from a letter or digit.")]


def parse_events(text: str) -> list[str]:
    """'request_created,activated' or '*' as the list of kinds (each checked by the database)."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if not kinds:
        raise typer.BadParameter("name the event kinds, comma-separated, or '*' for all", param_hint="--events")
    return kinds


@webhook_app.command("add")
def webhook_add(
    ctx: typer.Context,
    name: HookNameArg,
    events: Annotated[str, typer.Option(metavar="KINDS", show_default=False,
                                        help="Event kinds, comma-separated (request_created,activated), or '*'.")],
    url: Annotated[str | None, typer.Argument(metavar="[URL]", show_default=False,
                                              help="http:// or https:// address to POST to (or --url-stdin).")
                   ] = None,
    format: Annotated[HookFormat, typer.Option("--format", help=f"The body: {one_of(HookFormat)}.")
                      ] = HookFormat.JSON,
    url_stdin: Annotated[bool, typer.Option("--url-stdin", help="Read the URL as the first line of stdin, out of "
                                                                "the process list and the shell's history (a Slack "
                                                                "or Discord URL is a credential).")] = False,
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="Read the signing secret (16-200 characters) "
                                                                      "as one line of stdin (after the URL, with "
                                                                      "--url-stdin); default: generated.")
                            ] = False,
) -> None:
    """Add a webhook; prints its signing secret once (generated unless --secret-stdin), never shown again."""
    from .. import webhooks
    from ..errors import FieldError, InvalidValue
    from . import render

    opts: Options = ctx.obj
    kinds = parse_events(events)
    if (url is None) == (not url_stdin):
        raise typer.BadParameter("give the URL as an argument or on stdin with --url-stdin (not both)",
                                 param_hint="URL")
    address = sys.stdin.readline().strip() if url_stdin else url or ""
    secret = sys.stdin.readline().removesuffix("\n").removesuffix("\r") if secret_stdin else None
    problem = webhooks.check_url(address)
    if problem is not None:  # before connecting; the reason never quotes the URL
        raise InvalidValue(webhooks.WEBHOOKS, [FieldError("url", problem)])
    with connect_changes(opts) as conn:
        hook, signing = webhooks.add(conn, name, address, events=kinds, secret=secret, format=format.value,
                                     actor=opts.actor)
    if opts.json:
        render.emit_json(hook.json() | ({} if secret_stdin else {"secret": signing}))
    elif not secret_stdin:
        render.lines(signing)
    told = ("its secret is the one given on stdin" if secret_stdin
            else "the secret above signs its deliveries (X-Walltrack-Signature); it is shown this once and never "
                 "again: store it now")
    render.lines(f"webhook {hook.name} added ({hook.format}, events {','.join(hook.events)}); {told}",
                 stderr=True)


@webhook_app.command("list")
def webhook_list(ctx: typer.Context) -> None:
    """The webhooks: name, address, events, format (never a secret)."""
    from .. import webhooks
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        found = webhooks.webhooks(conn)
    if opts.json:
        return render.emit_json([w.json() for w in found])
    if not found:
        return render.lines("no webhooks")
    render.table(("name", "url", "events", "format", "state", "created", "by"),
                 [(w.name, w.url, ",".join(w.events), w.format, "enabled" if w.enabled else "disabled",
                   render.when(w.created_at), w.created_by or "") for w in found])


@webhook_app.command("remove")
def webhook_remove(ctx: typer.Context, name: HookNameArg) -> None:
    """Remove a webhook: nothing more is sent to it (its past deliveries stay listed)."""
    from .. import webhooks
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        webhooks.remove(conn, name, actor=opts.actor)
    if opts.json:
        return render.emit_json({"removed": name})
    render.lines(f"webhook {name} removed")


@webhook_app.command("deliveries")
def webhook_deliveries(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", show_default=False,
                                               help="Only this webhook's (default: every webhook's).")] = None,
    status: Annotated[DeliveryStatus | None, typer.Option(help=f"Only those {one_of(DeliveryStatus)}.",
                                                          show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 100,
) -> None:
    """What was sent to the webhooks, newest first: each event, its attempts and the last answer."""
    from .. import webhooks
    from . import render

    opts: Options = ctx.obj
    with connect_changes(opts) as conn:
        found = webhooks.deliveries(conn, webhook=name, status=status.value if status else None, limit=limit)
    if opts.json:
        return render.emit_json([d.json() for d in found])
    if not found:
        return render.lines("no webhook deliveries")
    render.table(("id", "webhook", "event", "seq", "status", "attempts", "last answer", "created", "delivered",
                  "next attempt"),
                 [(str(d.id), d.webhook, d.kind, str(d.event_seq), d.status, str(d.attempts),
                   _answer(d), render.when(d.created_at), render.when(d.delivered_at),
                   render.when(d.next_attempt_at) if d.status == "pending" else "") for d in found])


def _answer(d: Delivery) -> str:
    """The last answer: its HTTP status, or the kind of failure (ConnectError, DeadlineExceeded, ...)."""
    if d.last_status is not None:
        said = f"HTTP {d.last_status}"
        if d.last_error and d.last_error.startswith(said):  # as the sender records a refusal: said once
            return d.last_error
        return said + (f": {d.last_error}" if d.last_error else "")
    return d.last_error or ""
