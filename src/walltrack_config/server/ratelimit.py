"""Failed sign-ins and token checks, counted per client address and per name, in a sliding window.

Only failures count, and a key over its limit is refused before its credentials are even checked, so a
guesser learns nothing more until the window has moved on. Pure: the clock is given.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import RateLimited

MAX_KEYS = 100_000  # a flood of distinct names must not grow memory without bound


class FailureLimiter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, who: str) -> None:
        """RateLimited (with the seconds to wait) while `key` has `limit` failures within the window."""
        with self._lock:
            recent = self._recent(key)
            if recent is not None and len(recent) >= self.limit:
                wait = recent[0] + self.window - self._clock()
                raise RateLimited(max(1, math.ceil(wait)), who)

    def fail(self, key: str) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._prune()
            self._failures.setdefault(key, deque()).append(self._clock())

    def _recent(self, key: str) -> deque[float] | None:
        found = self._failures.get(key)
        if found is None:
            return None
        cutoff = self._clock() - self.window
        while found and found[0] <= cutoff:
            found.popleft()
        if not found:
            del self._failures[key]
            return None
        return found

    def _prune(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        if len(self._failures) >= MAX_KEYS:  # all recent: forget the oldest half rather than grow
            for key in list(self._failures)[: MAX_KEYS // 2]:
                del self._failures[key]
