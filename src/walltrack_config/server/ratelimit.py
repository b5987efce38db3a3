"""Failed sign-ins and token checks, counted per client address and per name, in a sliding window.

An attempt counts from the moment it starts (`begin`), not when its check ends: otherwise a burst of
concurrent guesses would all pass the limit while a slow password hash runs. A key over its limit is
refused before its credentials are even checked. Pure: the clock is given.
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
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, key: str, who: str) -> None:
        """RateLimited while `key` has `limit` failures within the window (attempts under way not counted)."""
        with self._lock:
            recent = self._recent(key)
            if len(recent) >= self.limit:
                raise RateLimited(max(1, math.ceil(recent[0] + self.window - self._clock())), who)

    def fail(self, key: str) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._prune()
            self._failures.setdefault(key, deque()).append(self._clock())

    def begin(self, key: str, who: str) -> None:
        """Count an attempt as under way; RateLimited (with the seconds to wait) if the key is at its limit."""
        with self._lock:
            recent = self._recent(key)
            running = self._running.get(key, 0)
            if len(recent) + running >= self.limit:
                wait = recent[0] + self.window - self._clock() if recent else 1.0
                raise RateLimited(max(1, math.ceil(wait)), who)
            self._running[key] = running + 1

    def end(self, key: str, failed: bool) -> None:
        """The attempt `begin` counted is over: a failure stays counted for the window, a success does not."""
        with self._lock:
            left = self._running.get(key, 1) - 1
            if left > 0:
                self._running[key] = left
            else:
                self._running.pop(key, None)
        if failed:
            self.fail(key)

    def _recent(self, key: str) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        cutoff = self._clock() - self.window
        while found and found[0] <= cutoff:
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def _prune(self) -> None:
        """Forget expired keys; if that frees too little, the oldest tenth (dicts keep insertion order), so that
        the next failures do not each rescan every key."""
        for key in list(self._failures):
            self._recent(key)
        if len(self._failures) >= MAX_KEYS * 9 // 10:
            for key in list(self._failures)[: MAX_KEYS // 10]:
                del self._failures[key]
