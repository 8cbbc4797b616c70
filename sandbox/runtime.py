"""The running sandbox: its data, limiter, fault injector, request log and runtime knobs."""

from __future__ import annotations

from sandbox.config import Knobs, StartupConfig
from sandbox.faults import FaultInjector
from sandbox.limits import RollingWindowLimiter
from sandbox.requestlog import RequestLog
from sandbox.seed import build_store
from sandbox.store import Store


class Sandbox:
    def __init__(self, config: StartupConfig):
        self.config = config
        self.knobs = config.knobs
        self.store: Store = self._seeded()
        self.limiter = RollingWindowLimiter(self.knobs.rate_limit, self.knobs.rate_window)
        self.faults = FaultInjector()
        self.log = RequestLog(config.log_size)

    def _seeded(self) -> Store:
        return build_store(self.config.seed_file, self.config.seed, self.config.customers_per_site)

    def reset(self) -> None:
        """Fresh seed data, an empty limiter and an empty request log (knobs are kept)."""
        self.store = self._seeded()
        self.limiter.reset()
        self.log.clear()

    def configure(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.limiter.configure(knobs.rate_limit, knobs.rate_window)
