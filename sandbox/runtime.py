"""The running sandbox: its data world, limiter, fault injector, request log, background
jobs and runtime knobs (shared by every API the sandbox serves)."""

from __future__ import annotations

import secrets
import time

from sandbox.config import Knobs, StartupConfig
from sandbox.faults import FaultInjector
from sandbox.jobs import apply_job
from sandbox.limits import RollingWindowLimiter
from sandbox.requestlog import RequestLog
from sandbox.seed import build_store
from sandbox.store import Account, PendingJob, Store


class Sandbox:
    def __init__(self, config: StartupConfig, clock=time.monotonic):
        self.config = config
        self.knobs = config.knobs
        self._clock = clock
        self.store: Store = self._seeded()
        self.limiter = RollingWindowLimiter(self.knobs.rate_window, clock)
        self.faults = FaultInjector()
        self.log = RequestLog(config.log_size)
        # Signs Open API subscriber JWTs (kept across resets).
        self.jwt_secret = config.jwt_secret.encode() if config.jwt_secret else secrets.token_bytes(32)

    def _seeded(self) -> Store:
        return build_store(self.config.seed_file, self.config.seed, self.config.customers_per_site)

    def reset(self) -> None:
        """Fresh seed data (accounts' limits and sites' Open settings from the file again), no
        queued jobs, no Open state (blacklist, login failures, newsletters, outbox), an empty
        limiter and an empty request log (knobs are kept)."""
        self.store = self._seeded()
        self.limiter.reset()
        self.log.clear()

    def configure(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.limiter.configure(knobs.rate_window)

    def rate_limit_of(self, account: Account) -> int:
        """Requests per window for `account`: the `rate_limit` knob if set, else its own limit."""
        return self.knobs.rate_limit if self.knobs.rate_limit is not None else account.api_core_rate_limit

    # --- background jobs (Pelcro runs some work later, e.g. refund cancellation) -------------

    def queue_job(self, kind: str, site_id: int, ids: list[int]) -> None:
        """Run `kind` over `ids` once `job_delay` seconds have passed (see sandbox/jobs.py)."""
        self.store.jobs.append(PendingJob(self._clock() + self.knobs.job_delay, kind, site_id, ids))

    def run_due_jobs(self, *, all_jobs: bool = False) -> int:
        """Apply queued jobs whose time has come (every one with `all_jobs`); returns how many ran."""
        now = self._clock()
        due = [job for job in self.store.jobs if all_jobs or job.due <= now]
        if due:
            self.store.jobs = [job for job in self.store.jobs if job not in due]
            for job in due:
                apply_job(self.store, job)
        return len(due)
