"""A live client reporting itself to the fleet (V13): who it is, and which activation it applied per domain.

On the database, reports ride on the listener's own connection between its waits (no second connection per
bot). Over HTTP, a small thread posts them to the server (POST /api/v1/fleet/report) with the bot's token.
Either way a report goes out at once after the client applied something new (its callbacks done), and
otherwise every heartbeat. Reporting never stops a bot: a database or server too old for the fleet, or a
refusal, is logged once and reporting stops; a failure to reach it is tried again at the next heartbeat.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from .. import fleet, schema
from ..errors import ConfigError, DatabaseError, InvalidTransition

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("walltrack_config.live")


class DatabaseReports:
    """Runs in the listener's thread (its on_idle hook), on the listener's connection."""

    def __init__(self, reporter: fleet.Reporter) -> None:
        self.reporter = reporter
        self._usable: bool | None = None  # unknown until the database's schema was looked at

    def __call__(self, conn: psycopg.Connection[Any]) -> None:
        import psycopg

        if self._usable is None:
            try:
                self._usable = schema.version(conn) >= schema.FLEET
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    raise  # the connection is gone: the listener reconnects
                self._usable = False
                log.warning("could not tell whether the database has a fleet (%s); not reporting", exc)
            if not self._usable:
                log.info("the database has no fleet table (before V13): this client does not report itself")
        if not self._usable or not self.reporter.due():
            return
        try:
            self.reporter.report(conn)
        except (DatabaseError, psycopg.OperationalError):
            raise  # the connection is gone: the listener reconnects, and the report is due again then
        except InvalidTransition as exc:
            # The fleet is full (it empties as old clients expire) or the id is another's: not now, next heartbeat.
            self.reporter.sent()
            log.warning("the fleet did not take this client's report (%s); trying again later", exc)
        except (ConfigError, psycopg.Error) as exc:
            # Refused, or the fleet's function is gone (U13 under a running bot): settings matter, reports do not.
            self._usable = False
            log.warning("the fleet refused this client's report (%s); it no longer reports itself", exc)

    def leave(self, url: str) -> None:
        from .. import db

        if not self._usable:
            return
        with contextlib.suppress(Exception), db.connect(url, application_name="walltrack-live") as conn:
            fleet.leave(conn, self.reporter.info.id)


class HttpReports:
    """A thread posting reports to the server while the client runs."""

    def __init__(self, reporter: fleet.Reporter, base: str, token: str | None, verify: bool | str = True) -> None:
        self.reporter, self._base = reporter, base.rstrip("/") + "/api/v1/fleet"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._verify = verify
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._usable = True

    def applied(self) -> None:
        """Something new was applied: report now rather than at the next heartbeat."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="walltrack-live-report", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        import httpx

        with httpx.Client(headers=self._headers, verify=self._verify, timeout=10) as client:
            while not self._stop.is_set() and self._usable:
                if self.reporter.due():
                    self._post(client)
                self._wake.wait(min(1.0, self.reporter.info.heartbeat))
                self._wake.clear()
            if self._usable:
                with contextlib.suppress(httpx.HTTPError):
                    client.delete(f"{self._base}/{self.reporter.info.id}")

    def _post(self, client: Any) -> None:
        import httpx

        body = self.reporter.body()
        try:
            answer = client.post(f"{self._base}/report", json=body)
        except httpx.HTTPError as exc:
            log.debug("could not report to the fleet: %s", exc)
            return
        if answer.status_code == 204:
            self.reporter.sent(body)
        elif answer.status_code == 409:  # the fleet is full (it empties as old clients expire), or the id taken
            self.reporter.sent()  # try again at the next heartbeat, not in a loop
            log.warning("the server did not take this client's fleet report: %s", answer.text[:200])
        elif answer.status_code in (400, 404, 422):
            self._usable = False  # an older server, or a refusal that will not change by retrying
            log.warning("the server refused this client's fleet report (%s %s); it no longer reports itself",
                        answer.status_code, answer.text[:200])
        else:
            log.debug("fleet report answered %s; trying again at the next heartbeat", answer.status_code)
