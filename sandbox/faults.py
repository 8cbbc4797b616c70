"""Fault injection (off by default): added latency, a share of 5xx answers, forced 429s.

Injected errors happen before the request is processed, so they never change state.
"""

from __future__ import annotations

import random

from sandbox.config import Knobs
from sandbox.errors import InjectedServerError, RateLimited

SERVER_ERRORS = (500, 502, 503)
FORCED_RETRY_AFTER = 1


class FaultInjector:
    def __init__(self, rng: random.Random | None = None):
        self._rng = rng or random.Random()

    def forced_429(self, knobs: Knobs) -> RateLimited | None:
        """A 429 to answer instead of serving (not counted by the limiter), or None."""
        if knobs.force_429 and self._rng.random() < knobs.force_429:
            return RateLimited(FORCED_RETRY_AFTER)
        return None

    def server_error(self, knobs: Knobs) -> InjectedServerError | None:
        """A 5xx to answer instead of serving, or None."""
        if knobs.error_rate and self._rng.random() < knobs.error_rate:
            return InjectedServerError(self._rng.choice(SERVER_ERRORS))
        return None
