"""`walltrack-config serve`: the REST API on uvicorn, started like every other command."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from .app import Options, app

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere: not loopback as far as we can tell


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on; beyond loopback only once a principal exists.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    migrate: Annotated[bool, typer.Option("--migrate", help="Apply pending migrations first (on a database URL; "
                                                             "the embedded default always does).")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM); serve HTTPS.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="Behind a proxy: the proxy addresses (comma-separated) whose X-Forwarded-For/-Proto to trust.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")]
    = "info",
) -> None:
    """Serve the REST API (/api/v1, docs at /api/docs) until SIGTERM or Ctrl-C."""
    import os

    from .. import db, principals, schema
    from ..errors import MigrationsPending, UnsafeBind, UsageError
    from ..migrate import plan as migrations
    from ..migrate import runner
    from . import render

    opts: Options = ctx.obj
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise UsageError("give both --ssl-certfile and --ssl-keyfile, or neither")
    embedded = opts.database_url is None and db.ENV_URL not in os.environ
    url = db.resolve_url(opts.database_url)
    found = migrations.discover()
    with db.connect(url) as conn:
        if embedded or migrate:
            applied = runner.migrate(conn, found, opts.actor)
            if applied:
                render.lines(f"applied {', '.join(f'V{m.version}' for m in applied)}", stderr=True)
        pending = [row.version for row in runner.status(conn, found) if row.state == "pending"]
        if pending:
            raise MigrationsPending(pending)
        schema.require(conn, schema.CHANGES)
        if not is_loopback(host) and not principals.any_principal(conn):
            raise UnsafeBind(host)
        first_run = not principals.any_user(conn)
    _run(url, host, port, ssl_certfile, ssl_keyfile, forwarded_allow_ips, log_level, first_run)


def _run(url: str, host: str, port: int, certfile: Path | None, keyfile: Path | None, forwarded: str | None,
         log_level: str, first_run: bool) -> None:
    import uvicorn

    from ..server.app import create_app
    from ..server.console.setup import SETUP_MINUTES, new_code
    from ..server.run import Server
    from ..server.settings import ServerSettings
    from . import render

    tls = certfile is not None
    code = new_code() if first_run else None
    application = create_app(ServerSettings(url=url, tls=tls, setup_code=code))
    config = uvicorn.Config(
        application, host=host, port=port, log_level=log_level.lower(), server_header=False,
        ssl_certfile=str(certfile) if certfile else None, ssl_keyfile=str(keyfile) if keyfile else None,
        # Without --forwarded-allow-ips, X-Forwarded-For is ignored: a client could otherwise pick its own
        # address and walk around the per-address limit on failed sign-ins.
        proxy_headers=forwarded is not None, forwarded_allow_ips=forwarded,
        timeout_graceful_shutdown=10,
    )
    # Bound here, so that the banner and the setup link name the real port (--port 0 too).
    sock = config.bind_socket()
    port = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    shown = f"[{host}]" if ":" in host else host

    def started() -> None:
        render.lines(f"serving walltrack-config on {scheme}://{shown}:{port} (console /, API /api/v1, docs "
                     "/api/docs); Ctrl-C stops it", stderr=True)
        if code is not None:
            # The setup page answers loopback addresses only: the link names one, whatever address is served.
            local = "[::1]" if ":" in host else "127.0.0.1"
            render.lines(f"first run: no user yet. Open {scheme}://{local}:{port}/setup?code={code} within "
                         f"{SETUP_MINUTES} minutes (once) to choose the first admin", stderr=True)

    # uvicorn raises the signal that stopped it again once it has shut down gracefully; under the default
    # handler that SIGTERM would then kill the process (status -15) after a clean stop. Asked for and done: 0.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        Server(config, on_started=started).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)
