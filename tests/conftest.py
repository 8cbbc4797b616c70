"""Shared fixtures. Feature-specific fixtures live in tests/fixtures_*.py (pytest_plugins)."""

import os
import uuid

# Each test run gets its own Redis key prefix, so concurrent runs never share state.
os.environ.setdefault("REDIS_KEY_PREFIX", f"pgwtest-{uuid.uuid4().hex[:8]}:")

import pytest  # noqa: E402
import redis as redis_lib  # noqa: E402
from django.conf import settings  # noqa: E402

pytest_plugins = ["tests.fixtures_servers", "tests.fixtures_ratelimit", "tests.fixtures_sandbox", "tests.fixtures_oauth",
                  "tests.fixtures_mcp"]


@pytest.fixture
def redis_client():
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    # Remove only this run's keys; never FLUSHDB a Redis others may share.
    for key in client.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000):
        client.delete(key)
    client.close()
