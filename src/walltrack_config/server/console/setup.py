"""The first-run link: with no user yet, `serve` prints a one-time link where the first admin is chosen.

It is valid once, for SETUP_MINUTES, from a loopback address only (the person at the machine that started the
server); only a digest of its code is held. Once any user exists the page says setup is over.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass, field

SETUP_MINUTES = 15


def new_code() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class SetupLink:
    code: str | None  # None: this server printed no link (a user existed when it started)
    minutes: float = SETUP_MINUTES
    started: float = field(default_factory=time.monotonic)
    used: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # Keep a digest only: the code itself went to the terminal that started the server.
        self._digest = hashlib.sha256(self.code.encode()).hexdigest() if self.code else None
        self.code = None

    def problem(self, code: str | None, address: str) -> str | None:
        """Why this code cannot be used now from this address, or None when it can."""
        if self._digest is None or self.used:
            return "this setup link was used already, or this server has none: sign in instead"
        if time.monotonic() - self.started > self.minutes * 60:
            return f"this setup link expired ({self.minutes:g} minutes); restart the server for a new one"
        if not _loopback(address):
            return "the setup link works only from the machine the server runs on (a loopback address)"
        given = hashlib.sha256((code or "").encode()).hexdigest()
        if not hmac.compare_digest(given, self._digest):
            return "this is not the setup link the server printed"
        return None

    def use(self, code: str | None, address: str) -> str | None:
        """Take the link (once); None when taken, else why not."""
        with self._lock:
            found = self.problem(code, address)
            if found is None:
                self.used = True
            return found

    def give_back(self) -> None:
        """The first admin could not be made (a bad name or password): the link stays usable."""
        with self._lock:
            self.used = False


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
