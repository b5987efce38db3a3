"""The server's background work (V14), running in every server process for as long as it serves.

Each round, every `background_interval` seconds and at once when the database notifies `walltrack_changes`
(an event was recorded: a request, a schedule, an activation, ...):

- scheduled activations whose time came run (`schedules.run_due`): exactly once whatever the number of
  servers or cron runners, since the database claims each with FOR UPDATE SKIP LOCKED; one older than
  `schedule_grace` (the servers were all down at its time) is marked missed instead;
- fleet clients that just went stale are noted (`events.note_stale`), once each, as `client_stale` events;
- due webhook deliveries are sent (`webhooks.Sender.send_due`), each claimed with a lease, so two servers
  never send one at the same time.

Webhooks have a thread of their own: a receiver that takes its whole timeout to answer must not hold back a
scheduled activation; and a stopping server does not wait for it either (the delivery under way is cut off,
uncounted, and comes due again). The first round runs as the server starts, so schedules that came due while no server
ran are run (or marked missed) at once. A step that fails is logged (once while it keeps failing with the
same message, never with a webhook's URL or secret) and tried again the next round: nothing here ends a thread
but the server stopping.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .settings import ServerSettings

if TYPE_CHECKING:
    import psycopg

    from ..webhooks import Sender

log = logging.getLogger("walltrack_config.server")

CHANNEL = "walltrack_changes"  # V14 notifies it with each event's sequence number
BATCH = 5  # deliveries claimed at once (a stopping server cuts the one being sent off and leaves the rest)
MIN_GAP = 0.02  # seconds between two rounds, however many notifications come

Connect = Callable[[], AbstractContextManager["psycopg.Connection[Any]"]]


def default_runner() -> str:
    """Who ran a schedule, as activation_schedules.finished_by records it: this server process."""
    return f"server {socket.gethostname()}:{os.getpid()}"


class Background:
    """The background rounds of one server process: `start` them, `wake` them early, `stop` them."""

    def __init__(self, connect: Connect, settings: ServerSettings, *, runner: str | None = None) -> None:
        self._connect = connect
        self.settings = settings
        self.runner = runner or default_runner()
        self._stop = threading.Event()
        self._woken = {"changes": threading.Event(), "webhooks": threading.Event()}
        self._threads: list[threading.Thread] = []
        self._failing: dict[str, str] = {}  # step -> what it last failed with (logged once while it repeats)
        self._sender: Sender | None = None
        #: rounds completed per loop, for tests and for a look in a debugger
        self.rounds = {"changes": 0, "webhooks": 0}

    def start(self) -> None:
        from ..webhooks import Sender

        self._sender = Sender(self._connect, retry_base=self.settings.webhook_retry_base)
        for name, work in (("changes", self._changes), ("webhooks", self._webhooks)):
            thread = threading.Thread(target=self._loop, args=(name, work), name=f"walltrack-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def wake(self, payload: str | None = None) -> None:
        """A round now, not at the next interval (the listener's thread calls it on each NOTIFY, and after
        connecting again, with None: whatever was notified meanwhile is due now)."""
        for woken in self._woken.values():
            woken.set()

    def stop(self, timeout: float = 10.0) -> None:
        """End both loops. A round under way finishes its step first, but for the webhooks: the delivery being
        sent is cut off (not counted; it comes due again) and no other is begun."""
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("background %s did not stop within %g s; leaving it", thread.name, timeout)
        self._threads.clear()
        close = getattr(self._sender, "close", None)
        if callable(close):
            self._step("closing the webhook sender", close, secret=True)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    # -- the loops ------------------------------------------------------------------------------------------------

    def _loop(self, name: str, work: Callable[[], None]) -> None:
        woken = self._woken[name]
        while not self._stop.is_set():
            woken.clear()  # a notification during the round brings the next one at once
            try:
                work()
            except BaseException:  # _step catches what a step raises; this is the last guard of the thread
                log.exception("background %s round failed", name)
            self.rounds[name] += 1
            woken.wait(self.settings.background_interval)
            self._stop.wait(MIN_GAP)

    def _changes(self) -> None:
        self._step("running due schedules", self._run_due)
        if not self._stop.is_set():
            self._step("noting stale clients", self._note_stale)

    def _webhooks(self) -> None:
        sender = self._sender
        if sender is None:
            return
        while not self._stop.is_set():
            sent = self._step("sending webhook deliveries", lambda: sender.send_due(BATCH, stop=self._stop),
                              secret=True)
            if not isinstance(sent, int) or sent < BATCH:
                return

    # -- the steps ------------------------------------------------------------------------------------------------

    def _run_due(self) -> None:
        from .. import schedules

        with self._connect() as conn:
            ran = schedules.run_due(conn, grace=self.settings.schedule_grace, runner=self.runner)
        for one in ran:
            said = f": {one.outcome}" if one.outcome else ""
            if one.status == "done":
                log.info("scheduled activation %s of %s done%s", one.id, one.domain, said)
            else:
                log.warning("scheduled activation %s of %s %s%s", one.id, one.domain, one.status, said)

    def _note_stale(self) -> None:
        from .. import events

        with self._connect() as conn:
            noted = events.note_stale(conn)
        if noted:
            log.info("%d fleet client(s) went stale", noted)

    def _step(self, what: str, step: Callable[[], Any], *, secret: bool = False) -> Any:
        """`step()`, its result; a failure logged (a repeat of the same one only at debug level), None."""
        try:
            result = step()
        except Exception as exc:
            said = _said(exc, secret)
            if self._failing.get(what) != said:
                log.warning("background: %s failed: %s", what, said)
            else:
                log.debug("background: %s failed again: %s", what, said)
            self._failing[what] = said
            return None
        if self._failing.pop(what, None) is not None:
            log.info("background: %s works again", what)
        return result


def _said(exc: Exception, secret: bool) -> str:
    """What a failure is, in one line. Where a webhook's URL or secret could be in the message (an HTTP
    library's error), only the kind of failure: our own errors and the database's never hold them."""
    import psycopg

    if isinstance(exc, ConfigError):
        return " ".join(str(exc).split())
    if isinstance(exc, psycopg.Error):
        primary = exc.diag.message_primary if exc.sqlstate else None
        return " ".join(f"{exc.sqlstate or type(exc).__name__}: {primary or str(exc)}".split())
    return type(exc).__name__ if secret else f"{type(exc).__name__}: {' '.join(str(exc).split())}"
