"""Shared fixtures. Feature-specific fixtures live in tests/fixtures_*.py (pytest_plugins)."""

import contextlib

import pytest
import redis as redis_lib
from django.conf import settings

pytest_plugins = ["tests.fixtures_servers", "tests.fixtures_ratelimit", "tests.fixtures_sandbox", "tests.fixtures_oauth",
                  "tests.fixtures_mcp", "tests.fixtures_faults", "tests.fixtures_browser"]


@pytest.fixture
def redis_client():
    assert settings.REDIS_KEY_PREFIX.startswith("pgwtest-"), "tests/run_env.py did not run"
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    # Remove only this run's keys; never FLUSHDB a Redis others may share.
    for key in client.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def _no_auth_epoch_hold_left():
    """A test whose transaction never commits (the `db` fixture) never releases the auth
    epoch holds its changes took (`accounts.auth_epoch`); in production a rolled-back hold
    expires after HOLD_SECONDS, here it would keep every cache of the run off that long."""
    yield
    from accounts.auth_epoch import holds_key
    from accounts.redis_client import redis_client

    with contextlib.suppress(redis_lib.RedisError):
        redis_client().delete(holds_key())
