"""Fan-out of the live settings to Server-Sent Events clients: one listener per process, any number of clients.

The listener's thread hands each reading's changes to `Hub.publish_threadsafe`; in the event loop, `publish`
encodes each change once and puts the same bytes in every interested client's bounded queue, or writes them
at once to a client whose writer waits (sse.py). A client whose queue is full has fallen behind: it is sent
`resync` and dropped, and nobody else waits for it. Events keep the activation sequence as their id, and the
hub keeps the last `keep` of them, so a client that reconnects with Last-Event-ID gets only what it missed,
or a fresh snapshot when that is older than what is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ..errors import ServerBusy
from ..live.engine import LiveRow, row_json
from ..principals import Principal
from .snapshot import View

log = logging.getLogger("walltrack_config.server")

HEARTBEAT = b": heartbeat\n\n"
#: Seconds a write to one client may wait for it to read (checked at each heartbeat): then it is let go.
SEND_TIMEOUT = 30.0


def event(kind: str, data: object, ident: int | None = None) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


@dataclass(frozen=True)
class Change:
    domain: str
    activation: int
    body: bytes  # the whole SSE event, encoded once for every client


@dataclass(eq=False, slots=True)
class Subscriber:
    """One client: the events its writer has yet to send, and where it stands.

    A plain list and a future made only while the writer waits, not an asyncio.Queue: tens of thousands of
    these are held at once (the stream's memory per connection is most of the server's). While the writer
    waits, an event is written at once by `direct` (sse.Link.write), without waking it.
    """

    domains: frozenset[str]
    who: Principal | None = None  # checked at connect; dropped when revoked, disabled or expired
    pending: list[bytes] = field(default_factory=list)  # bounded by the hub: queue_size, and a last word
    last: int = 0  # the highest activation sent: a change at or below it is not news to this client
    ended: bool = False  # nothing more is added; the writer sends what is pending, then ends the response
    waiter: asyncio.Future[None] | None = None  # while the writer waits for something to send
    writing: float = 0.0  # time.monotonic() when the write under way began (0: none)
    task: asyncio.Task[Any] | None = None  # the writer's, to let go of a write that never completes
    stalled: bool = False  # let go for that reason
    direct: Callable[[bytes], None] | None = None

    def put(self, body: bytes) -> None:
        if self.waiter is not None and self.direct is not None:
            self.direct(body)
        else:
            self.pending.append(body)
            self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class Hub:
    def __init__(self, queue_size: int = 64, keep: int = 1024, heartbeat: float = 15.0,
                 most: int = 20_000) -> None:
        self.queue_size, self.heartbeat, self.most = queue_size, heartbeat, most
        self.view = View()
        self.connected = True
        self._recent: deque[Change] = deque(maxlen=keep)
        # Last-Event-ID at or above this is answered from _recent: what came before this process knew nothing.
        self._floor: int | None = None
        self._subscribers: set[Subscriber] = set()
        self._leaving: set[Subscriber] = set()  # ended, with their writer still sending what was pending
        self._domain_sets: dict[tuple[str, ...], frozenset[str]] = {}  # one per distinct choice, not per client
        self._snapshots: dict[tuple[frozenset[str], bool], bytes] = {}  # of the view _snapshots_of
        self._snapshots_of: View | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat: asyncio.Task[None] | None = None

    # -- from the listener's thread --------------------------------------------------------

    def publish_threadsafe(self, view: View, changes: list[LiveRow]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.publish, view, changes)
        else:  # not serving yet: only remember where we stand
            self.publish(view, changes)

    def revoke_threadsafe(self, target: tuple[str, UUID] | None) -> None:
        """A token or user changed (NOTIFY walltrack_principals): its open streams end; they may reconnect."""
        if target is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.revoke, *target)

    def status_threadsafe(self, connected: bool, error: str | None) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.status, connected)

    # -- in the event loop -----------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._beat = asyncio.create_task(self._heartbeats())

    async def stop(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
        for sub in list(self._subscribers):
            self._end(sub)

    def publish(self, view: View, changes: list[LiveRow]) -> None:
        if self._floor is None:
            self._floor = view.activation
        self.view = view
        for row in changes:
            if self._recent and len(self._recent) == self._recent.maxlen:
                self._floor = self._recent[0].activation  # about to forget it: resuming below needs a snapshot
            change = Change(row.domain, row.activation, event("change", row_json(row), row.activation))
            self._recent.append(change)
            self._fan_out(change)

    def revoke(self, kind: str, ident: UUID) -> None:
        """End the streams of a token (or session) that changed, or of every session of a user that did: the
        client reconnects, and is checked again (a role changed: the new one; revoked or disabled: refused)."""
        body = event("revoked", {"reason": "the credentials of this stream changed; reconnect"})
        for sub in list(self._subscribers):
            who = sub.who
            if who is not None and (who.token_id == ident or (kind == "user" and who.kind == "user"
                                                                and who.id == ident)):
                self._last_word(sub, body)

    def status(self, connected: bool) -> None:
        """The listener lost the database (the settings served may be stale) or has it back."""
        self.connected = connected
        body = event("status", {"connected": connected, "stale": not connected})
        for sub in list(self._subscribers):
            self._offer(sub, body)

    def subscribe(self, domains: Iterable[str], last_event_id: str | None, who: Principal | None = None) -> Subscriber:
        """A new client: its queue already holds a snapshot, or what it missed since Last-Event-ID."""
        if len(self._subscribers) >= self.most:
            raise ServerBusy(f"this server holds {self.most:,} streams already; try another, or later")
        chosen = tuple(domains)
        if (shared := self._domain_sets.get(chosen)) is None:
            shared = frozenset(chosen)
            if len(self._domain_sets) < 256:  # clients choose among a few sets; a junk choice is not kept
                self._domain_sets[chosen] = shared
        sub = Subscriber(shared, who)
        resume = _as_int(last_event_id)
        # An id above what this server has seen (a database restored from a backup, or a client that saw a
        # change on another server a moment earlier) gets a snapshot: trusting it could hide every change below it.
        known = resume is not None and self._floor is not None and self._floor <= resume <= self.view.activation
        if known and resume is not None:
            sub.last = resume
            for change in self._recent:
                if change.activation > resume and change.domain in sub.domains:
                    sub.pending.append(change.body)
                    sub.last = change.activation
                    if len(sub.pending) >= self.queue_size:  # missed more than a queue holds: start over
                        return self._snapshot_for(sub)
        else:
            self._snapshot_for(sub)
        if not self.connected:  # resumed while this server has no database: say so, as a snapshot would
            sub.pending.append(event("status", {"connected": False, "stale": True}))
        self._subscribers.add(sub)
        return sub

    def gone(self, sub: Subscriber) -> None:
        """The client left: it counts no more, even while its writer finishes."""
        sub.pending.clear()
        self._end(sub)

    def leave(self, sub: Subscriber) -> None:
        """Its writer is done."""
        self._subscribers.discard(sub)
        self._leaving.discard(sub)

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def _snapshot_for(self, sub: Subscriber) -> Subscriber:
        sub.pending.clear()
        view = self.view
        sub.last = view.activation
        # Encoded once per state and choice of domains: a restarted server is reconnected to by every client at once.
        if self._snapshots_of is not view:
            self._snapshots_of, self._snapshots = view, {}
        if (body := self._snapshots.get((sub.domains, self.connected))) is None:
            rows = {d: row_json(r) for d, r in sorted(view.rows.items()) if d in sub.domains}
            body = event("snapshot", {"activation": view.activation, "stale": not self.connected,
                                      "heartbeat": self.heartbeat, "domains": rows}, view.activation)
            if len(self._snapshots) < 256:
                self._snapshots[sub.domains, self.connected] = body
        sub.pending.append(body)
        self._subscribers.add(sub)
        return sub

    def _fan_out(self, change: Change) -> None:
        for sub in list(self._subscribers):
            if change.domain in sub.domains and change.activation > sub.last:
                sub.last = change.activation
                self._offer(sub, change.body)

    def _offer(self, sub: Subscriber, body: bytes) -> None:
        if sub.ended:
            return
        if len(sub.pending) >= self.queue_size:
            # Fallen behind: tell it to start over (a fresh snapshot on reconnection) and let it go.
            log.info("dropped a stream client that fell %d events behind", len(sub.pending))
            self._last_word(sub, event("resync", {"reason": "this client fell behind; reconnect for a snapshot"}))
            return
        sub.put(body)

    def _last_word(self, sub: Subscriber, body: bytes) -> None:
        """Tell a client why its stream ends, and end it (its queue keeps a place free for this)."""
        if sub.ended:
            return
        if len(sub.pending) <= self.queue_size:
            sub.pending.append(body)
        self._end(sub)

    def _end(self, sub: Subscriber) -> None:
        sub.ended = True
        self._subscribers.discard(sub)
        self._leaving.add(sub)
        sub.wake()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            now, clock = datetime.now(UTC), time.monotonic()
            expired = event("revoked", {"reason": "the session of this stream expired; sign in again"})
            for sub in list(self._subscribers):
                if sub.who is not None and sub.who.expires_at is not None and sub.who.expires_at <= now:
                    self._last_word(sub, expired)
                elif not sub.pending:  # a client with events waiting gets them instead
                    sub.put(HEARTBEAT)
            # One look per heartbeat at writes under way, rather than a timer around every write.
            for sub in [*self._subscribers, *self._leaving]:
                if sub.writing and clock - sub.writing > SEND_TIMEOUT and sub.task is not None and not sub.stalled:
                    log.info("let go of a stream client that read nothing for %.0f s", clock - sub.writing)
                    sub.stalled = True
                    self._end(sub)
                    sub.task.cancel()


def _as_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
