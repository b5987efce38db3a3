"""Who a request runs as: a bearer token (an API token, or a session from POST /login), checked against
the database, then remembered in memory for a while.

A remembered token is dropped at once when the database announces that its token or user changed
(NOTIFY walltrack_principals, heard by the server's one listening connection), and in any case after
REMEMBER seconds, so that a listening connection that died silently cannot keep a revoked token alive.
When the database cannot be asked, a token known before goes on working (as reads go on from memory),
for REMEMBER seconds more at a time: an outage costs one slow check a minute per token, not one per request.

Tokens are only read from the Authorization header. Failed checks are limited per client address (a
token's secret has 256 bits: no per-token limit is needed, and one would let anyone lock a token out by
its public id); sign-ins per address and per name. Password hashing runs on a few threads at most,
never holding a pooled connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from .. import principals
from ..errors import AuthenticationFailed, DatabaseUnavailable
from .ratelimit import FailureLimiter
from .settings import ServerSettings

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    import psycopg

    Connect = Callable[[], AbstractContextManager[psycopg.Connection]]

log = logging.getLogger("walltrack_config.server")

TOUCH_EVERY = 60.0  # seconds: a token's last use is recorded at most this often (every use would be a write)
REMEMBER = 60.0  # seconds a checked token is trusted from memory without asking the database again
MAX_CACHED = 10_000
HASHING_THREADS = 2  # argon2 is slow on purpose: a burst of sign-ins must not take every worker thread


@dataclass
class _Known:
    principal: principals.Principal
    checked: float
    touched: float


class Authenticator:
    def __init__(self, connection: Connect, settings: ServerSettings) -> None:
        self._connection = connection
        self._known: dict[str, _Known] = {}
        self._generation = 0  # bumped by forget(): a check under way when principals changed is not remembered
        self._lock = threading.Lock()
        self._hashing = threading.BoundedSemaphore(HASHING_THREADS)
        self.by_address = FailureLimiter(settings.failures_per_address, settings.failure_window)
        self.by_name = FailureLimiter(settings.failures_per_name, settings.failure_window)
        self._toucher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="walltrack-touch")
        self._idle = settings.session_idle

    def close(self) -> None:
        self._toucher.shutdown(wait=True, cancel_futures=True)

    def forget(self, payload: str | None = None) -> None:
        """Drop what a NOTIFY walltrack_principals payload ({"kind", "id"}) names; everything for None or junk."""
        target = principal_target(payload)
        with self._lock:
            self._generation += 1
            if target is None:
                self._known.clear()
                return
            kind, ident = target
            for key, known in list(self._known.items()):
                who = known.principal
                if who.token_id == ident or (kind == "user" and who.kind == "user" and who.id == ident):
                    del self._known[key]

    def known(self, bearer: str) -> principals.Principal | None:
        """The principal of a token checked recently and still valid, from memory; None: check it."""
        return self._remembered(bearer, time.monotonic() - REMEMBER)

    def check(self, bearer: str, address: str) -> principals.Principal:
        """Check a token against the database (blocking: call from a worker thread)."""
        # Failures only, not attempts under way: a token check is one fast hash (no burst to fear, unlike a
        # password), and a fleet of bots behind one address may all present their token at the same moment.
        key = f"addr:{address}"
        self.by_address.check(key, f"address {address}")
        generation = self._generation
        try:
            if principals.parse_token(bearer) is None:
                raise AuthenticationFailed("invalid token")
            with self._connection() as conn:
                principal = principals.authenticate(conn, bearer, idle=self._idle)
        except AuthenticationFailed:
            self.by_address.fail(key)
            raise
        except DatabaseUnavailable:
            # The database is away: a token known before still works, as reads do (from memory).
            remembered = self._remembered(bearer, float("-inf"))
            if remembered is None:
                raise
            if (entry := self._known.get(_key(bearer))) is not None:
                entry.checked = time.monotonic()
            return remembered
        now = time.monotonic()
        with self._lock:
            if generation == self._generation:
                if len(self._known) >= MAX_CACHED:
                    self._known.clear()
                self._known[_key(bearer)] = _Known(principal, now, now)
        # Checked afresh (at most once a REMEMBER): a use to record, which keeps an active session from idling out.
        self._toucher.submit(self._touch, principal.token_id)
        return principal

    def login(self, name: str, password: str, address: str, ttl: timedelta) -> tuple[principals.Principal, str]:
        """A sign-in by name and password (blocking): a session and its token."""
        keys = ((self.by_address, f"addr:{address}", f"address {address}"),
                (self.by_name, f"user:{name.lower()}", f"user {name!r}"))
        begun: list[tuple[FailureLimiter, str]] = []
        failed = True
        try:
            for limiter, key, who in keys:
                limiter.begin(key, who)
                begun.append((limiter, key))
            with self._connection() as conn:
                candidate = principals.find_login(conn, name)
            with self._hashing:  # no pooled connection is held while the hash runs
                verified = principals.check_password(candidate, password)
            with self._connection() as conn:
                session = principals.open_session(conn, verified, ttl=ttl)
            failed = False
            return session
        finally:
            for limiter, key in begun:
                limiter.end(key, failed)

    def _remembered(self, bearer: str, since: float) -> principals.Principal | None:
        key = _key(bearer)
        found = self._known.get(key)
        if found is None or found.checked < since:
            return None
        expires = found.principal.expires_at
        if expires is not None and expires <= datetime.now(UTC):
            self._known.pop(key, None)
            return None
        now = time.monotonic()
        if now - found.touched >= TOUCH_EVERY:
            found.touched = now
            self._toucher.submit(self._touch, found.principal.token_id)
        return found.principal

    def _touch(self, token_id: UUID) -> None:
        try:
            with self._connection() as conn:
                principals.touch(conn, token_id)
        except Exception as exc:  # recording a last use must never fail a request, nor stop the next
            log.debug("could not record a token's last use: %s", exc)


def _key(bearer: str) -> str:
    # Keyed by a digest, so that a memory dump of the cache holds no usable token.
    return hashlib.sha256(bearer.encode("utf-8", "surrogatepass")).hexdigest()


def principal_target(payload: str | None) -> tuple[str, UUID] | None:
    """(kind, id) from a NOTIFY payload; None when it names nothing we can match (then forget everything)."""
    if payload is None or len(payload) > 200:
        return None
    try:
        found = json.loads(payload)
        return str(found["kind"]), UUID(str(found["id"]))
    except (ValueError, KeyError, TypeError):
        return None
