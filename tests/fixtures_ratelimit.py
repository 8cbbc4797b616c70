"""Fixtures and helpers for the rate-limiter, Celery and ops tests.

- `limiter_account`: a fresh account id whose limiter keys are deleted afterwards.
- `OwnRedis`: a private redis-server on a free port, for tests that stop Redis (never
  the shared one on 6379).
- `log_times` / `max_in_window`: when requests really reached the upstream (from the
  sandbox's log), and the busiest rolling window of a list of times.
- `hammer_process`: a process entry point that acquires slots as fast as it can.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings

from tests.servers import OUTPUT_DIR, free_port


def delete_account_keys(account_id: int, url: str | None = None) -> None:
    client = redis_lib.Redis.from_url(url or settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:{{{account_id}}}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def limiter_account():
    """An account id no other test uses; its limiter keys are removed at teardown."""
    account_id = random.randint(10**8, 10**9)
    yield account_id
    delete_account_keys(account_id)


@pytest.fixture
async def close_limiter_redis():
    """Close the test loop's limiter Redis pool when an async test ends."""
    from mcp_bridge.ratelimit import close_redis_for_loop

    yield
    await close_redis_for_loop()


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open window (t - window, t] ending on an event."""
    ordered = sorted(times)
    return max((i + 1 - bisect.bisect_right(ordered, t - window) for i, t in enumerate(ordered)), default=0)


def log_times(entries: list[dict]) -> list[float]:
    return [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in entries]


class OwnRedis:
    """A private redis-server on 127.0.0.1:<free port> with AOF persistence in a temp dir
    (the production recommendation: a restart keeps the limiter's last window)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="pgw-redis-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        OUTPUT_DIR.mkdir(exist_ok=True)
        log = open(OUTPUT_DIR / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        client = redis_lib.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_redis():
    server = OwnRedis().start()
    yield server
    server.cleanup()


def hammer_process(account_id: int, config_kwargs: dict, until: float, result_queue, background: bool = False,
                   tasks: int = 4) -> None:
    """Process entry point: `tasks` coroutines acquire slots until `until` (epoch seconds);
    puts the Redis grant times (seconds) on `result_queue`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")
    import django

    django.setup()
    from mcp_bridge.ratelimit import LimitConfig, RedisRateGate, close_redis_for_loop

    gate = RedisRateGate(LimitConfig(**config_kwargs))
    grants: list[float] = []

    async def worker():
        while time.time() < until:
            decision = await gate.try_acquire(account_id, background=background)
            if decision.allowed:
                grants.append(decision.now)
            else:
                await asyncio.sleep(min(decision.retry_after, max(0.0, until - time.time())) + 0.001)

    async def main():
        await asyncio.gather(*(worker() for _ in range(tasks)))
        await close_redis_for_loop()

    asyncio.run(main())
    result_queue.put(grants)
