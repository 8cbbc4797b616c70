"""The Core API's strict per-account limit: N requests per rolling window of W seconds
(CORE_API.md §2, **chosen** rolling 60 s window; N is the account's `api_core_rate_limit`).

Each account keeps the arrival times of its counted requests in the current window; a
request that would be the N+1st is refused (and not counted) with the whole seconds
until the oldest one leaves the window.
"""

from __future__ import annotations

import math
import time
from collections import deque


class RollingWindowLimiter:
    def __init__(self, window: float, clock=time.monotonic):
        self.window, self._clock = window, clock
        self._hits: dict[str, deque[float]] = {}

    def configure(self, window: float) -> None:
        """A new window, applied to the requests already counted."""
        self.window = window

    def reset(self) -> None:
        self._hits.clear()

    def _current(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits

    def hit(self, key: str, limit: int) -> int | None:
        """Count one request for `key` under `limit`; if the window is full, count nothing and
        return the Retry-After seconds."""
        now = self._clock()
        hits = self._current(key, now)
        if len(hits) >= limit:
            # The (len - limit + 1)th oldest must leave before one more fits (limit may have shrunk).
            frees_at = hits[len(hits) - limit] + self.window
            return max(1, math.ceil(frees_at - now))
        hits.append(now)
        return None

    def used(self, key: str) -> int:
        """Requests of `key` counted in the current window."""
        return len(self._current(key, self._clock()))
