"""Redis down: the limiter fails closed (clear error, nothing sent upstream), readiness says
so, and everything recovers by itself when Redis is back. Uses a private redis-server
(with AOF, the production recommendation), never the shared one."""

import asyncio
import time

import httpx
import pytest
import redis as redis_lib

from devtools.oauth_client import mcp_url, obtain_tokens
from mcp_bridge.upstream.limiter import AccountKeys
from tests.support.mcp import PASSWORDS, mcp_session
from tests.support.ratelimit import TIGHT_GATEWAY_ENV, TIGHT_LIMIT, TIGHT_WINDOW, log_times, max_in_window
from tests.support.sandbox import SandboxClient
from tests.support.servers import start_gateway

pytestmark = pytest.mark.sqlite
DOWN_MESSAGE = "rate limiter unavailable (Redis down); no request was sent"


@pytest.fixture
def gateway_on_own_redis(own_redis, tight_sandbox, django_db_blocker, other):
    with django_db_blocker.unblock():
        server = start_gateway(tight_sandbox, REDIS_URL=own_redis.url, **TIGHT_GATEWAY_ENV)
    yield server
    server.stop()


async def call_plans(url: str, token: str, times: int) -> list:
    results = []
    async with mcp_session(url, token, "2026-07-28") as client:
        for _ in range(times):
            started = time.monotonic()
            result = await client.call_tool("list_plans", {"site_id": 27, "per_page": 1})
            results.append((result, time.monotonic() - started))
    return results


def test_redis_down_fails_closed_and_recovers_by_itself(gateway_on_own_redis, own_redis, tight_sandbox, other):
    gateway = gateway_on_own_redis
    url = mcp_url(gateway.url)
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "other")["access_token"]
    sandbox = SandboxClient(tight_sandbox)
    since = sandbox.last_seq()

    before = asyncio.run(call_plans(url, token, 5))
    assert all(not result.is_error for result, _ in before)
    assert len(sandbox.log(since, account="other")) == 5

    own_redis.stop()
    outage_seq = sandbox.last_seq()
    during = asyncio.run(call_plans(url, token, 8))
    for result, seconds in during:
        assert result.is_error
        assert result.structured_content["error"] == "upstream_unavailable"
        assert result.structured_content["message"] == DOWN_MESSAGE
        assert seconds < 2.5, "fails fast, does not hang"
    assert sandbox.log(outage_seq, account="other") == [], "nothing reached the upstream"
    ready = httpx.get(gateway.url + "/health/ready")
    assert ready.status_code == 503 and "redis" in ready.json()["failed"]

    own_redis.start()
    # AOF kept the limiter's log across the restart: the window is not forgotten.
    restarted = redis_lib.Redis.from_url(own_redis.url)
    assert restarted.zcard(AccountKeys.of(other.id).log) == 5
    restarted.close()
    after = asyncio.run(call_plans(url, token, 5))
    assert all(not result.is_error for result, _ in after), [r.structured_content for r, _ in after]
    assert httpx.get(gateway.url + "/health/ready").status_code == 200

    entries = sandbox.log(since, account="other")
    assert len(entries) == 10
    assert {e["status"] for e in entries} == {200}
    assert max_in_window(log_times(entries), TIGHT_WINDOW) <= TIGHT_LIMIT
