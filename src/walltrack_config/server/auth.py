"""Who a request runs as: a bearer token (an API token, or a session from POST /login), checked once and
then remembered in memory until the database says principals changed (NOTIFY walltrack_principals).

Tokens are only read from the Authorization header, never from a URL, a cookie or a body. A token that
fails is counted against the client's address and against the token's public id (its name, for a
sign-in), and either over its limit answers 429 before anything is checked.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from .. import principals
from ..errors import AuthenticationFailed
from .ratelimit import FailureLimiter
from .settings import ServerSettings

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    import psycopg

    Connect = Callable[[], AbstractContextManager[psycopg.Connection]]

log = logging.getLogger("walltrack_config.server")

TOUCH_EVERY = 60.0  # seconds: a token's last use is recorded at most this often (every use would be a write)
MAX_CACHED = 10_000


@dataclass
class _Known:
    principal: principals.Principal
    touched: float


class Authenticator:
    def __init__(self, connection: Connect, settings: ServerSettings) -> None:
        self._connection = connection
        self._known: dict[str, _Known] = {}
        self._generation = 0  # bumped by forget(): a check under way when principals changed is not remembered
        self._lock = threading.Lock()
        self.by_address = FailureLimiter(settings.failures_per_address, settings.failure_window)
        self.by_name = FailureLimiter(settings.failures_per_name, settings.failure_window)
        self._toucher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="walltrack-touch")

    def close(self) -> None:
        self._toucher.shutdown(wait=True, cancel_futures=True)

    def forget(self, payload: str | None = None) -> None:
        """Drop every remembered token: a user, a role or a token changed (or we may have missed that it did)."""
        with self._lock:
            self._known.clear()
            self._generation += 1

    def known(self, bearer: str) -> principals.Principal | None:
        """The principal of a token checked before and still valid, from memory; None otherwise."""
        key = _key(bearer)
        found = self._known.get(key)
        if found is None:
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

    def check(self, bearer: str, address: str) -> principals.Principal:
        """Check a token against the database (blocking: call from a worker thread)."""
        parsed = principals.parse_token(bearer)
        name = f"token {parsed[0]}" if parsed else "a malformed token"
        self._limit(address, f"token:{parsed[0] if parsed else '?'}", name)
        generation = self._generation
        try:
            with self._connection() as conn:
                principal = principals.authenticate(conn, bearer)
        except AuthenticationFailed:
            self._failed(address, f"token:{parsed[0] if parsed else '?'}")
            raise
        with self._lock:
            if generation == self._generation:
                if len(self._known) >= MAX_CACHED:
                    self._known.clear()
                self._known[_key(bearer)] = _Known(principal, time.monotonic())
        return principal

    def login(self, name: str, password: str, address: str, ttl: timedelta) -> tuple[principals.Principal, str]:
        """A sign-in by name and password, limited like token checks (blocking): a session and its token."""
        self._limit(address, f"user:{name.lower()}", f"user {name!r}")
        try:
            with self._connection() as conn:
                return principals.login(conn, name, password, ttl=ttl)
        except AuthenticationFailed:
            self._failed(address, f"user:{name.lower()}")
            raise

    def _limit(self, address: str, name_key: str, who: str) -> None:
        self.by_address.check(f"addr:{address}", f"address {address}")
        self.by_name.check(name_key, who)

    def _failed(self, address: str, name_key: str) -> None:
        self.by_address.fail(f"addr:{address}")
        self.by_name.fail(name_key)

    def _touch(self, token_id: UUID) -> None:
        try:
            with self._connection() as conn:
                principals.touch(conn, token_id)
        except Exception as exc:  # recording a last use must never fail a request, nor stop the next
            log.debug("could not record a token's last use: %s", exc)


def _key(bearer: str) -> str:
    # Keyed by a digest, so that a memory dump of the cache holds no usable token.
    return hashlib.sha256(bearer.encode("utf-8", "surrogatepass")).hexdigest()
