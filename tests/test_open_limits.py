"""The Open server's budgets in the shared limiter (issue 14 item 5): per subscriber and per
site, inside the account's own limit, against the real (shared) Redis.

- The script: a request with budgets is granted only if it fits the account AND each budget,
  is counted in all of them, and a refusal says which budget refused; budgets of other
  subscribers and sites are untouched; the account's limit still binds.
- End to end: a gateway with small budgets; one subscriber over their budget gets
  `rate_limited` with retry_after naming "this subscriber"; a second subscriber of the same
  site gets what is left of the site's budget and no more; a subscriber of another site of
  the same account, and the staff's Core tools, are not held back by it.
"""

from __future__ import annotations

import os

import pytest
from asgiref.sync import sync_to_async

from mcp_bridge.upstream.errors import RateLimited
from mcp_bridge.upstream.gate import Budget
from mcp_bridge.upstream.limiter import LimitConfig, RedisRateGate, request_finished
from tests.support.mcp import OUT_OF_REACH, McpEnv, audit_rows_async, mcp_session
from tests.support.open import open_connection
from tests.support.sandbox import READER, SECOND, SUBSCRIBERS

WEEKLY = SUBSCRIBERS[2]  # site 15, the same account (acme) as site 14


def fast(**overrides) -> LimitConfig:
    return LimitConfig(
        **{"limit": 10, "window": 5.0, "margin": 0, "wait_budget": 0.0, "background_share": 0.5} | overrides
    )


SITE = Budget("open-site:14", 5, "the Open API calls of all subscribers of site 14")
ALICE = Budget("open-subscriber:14:1", 3, "this subscriber")
BOB = Budget("open-subscriber:14:2", 3, "this subscriber")
OTHER_SITE = Budget("open-site:15", 5, "the Open API calls of all subscribers of site 15")
CAROL = Budget("open-subscriber:15:3", 3, "this subscriber")
DAVE = Budget("open-subscriber:15:4", 3, "this subscriber")


@pytest.mark.usefixtures("close_limiter_redis")
async def test_budgets_inside_the_account_limit(limiter_account):
    gate = RedisRateGate(fast())

    async def ask(*budgets: Budget):
        decision = await gate.try_acquire(limiter_account, budgets=budgets)
        if decision.allowed:
            await request_finished(limiter_account, 0.001, decision.call_id, budgets)
        return decision

    # One subscriber: their own budget (3) binds first.
    assert all([(await ask(ALICE, SITE)).allowed for _ in range(3)])
    refused = await ask(ALICE, SITE)
    assert not refused.allowed and refused.limited_by == ALICE and 0 < refused.retry_after <= 5.0
    # Another subscriber of the same site: only what is left of the site's budget (5 - 3).
    assert all([(await ask(BOB, SITE)).allowed for _ in range(2)])
    refused = await ask(BOB, SITE)
    assert not refused.allowed and refused.limited_by == SITE
    # Refused requests were counted nowhere: the account's log holds the 5 granted ones.
    core = await ask()
    assert core.allowed and core.remaining == 10 - 5 - 1
    # Another site of the account has its own budget; the account's limit still binds.
    assert all([(await ask(CAROL, OTHER_SITE)).allowed for _ in range(3)])
    assert (await ask()).allowed  # the account's 10th
    refused = await ask(DAVE, OTHER_SITE)
    assert not refused.allowed and refused.limited_by is None  # the account is full, not a budget


@pytest.mark.usefixtures("close_limiter_redis")
async def test_a_refusal_names_the_budget(limiter_account):
    gate = RedisRateGate(fast())
    for _ in range(3):
        await gate.acquire(limiter_account, budgets=(ALICE, SITE))
        await gate.finished(limiter_account, 0.001)
    with pytest.raises(RateLimited) as refused:
        await gate.acquire(limiter_account, budgets=(ALICE, SITE))
    assert refused.value.scope == "this subscriber (3 per 5 s)"
    assert refused.value.status == 0 and 1 <= refused.value.retry_after <= 5
    assert "rate limit for this subscriber (3 per 5 s) reached" in refused.value.message


# --- End to end ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def budget_gateway(django_db_setup, django_db_blocker, mcp_sandbox):
    """A gateway whose Open budgets are small (3 per subscriber, 5 per site, per 60 s), with
    its own Redis keys, so nothing else counts against them."""
    from tests.support.servers import start_gateway

    with django_db_blocker.unblock():
        server = start_gateway(
            mcp_sandbox,
            RATE_LIMIT=OUT_OF_REACH,
            OPEN_SUBSCRIBER_RATE_LIMIT="3",
            OPEN_SITE_RATE_LIMIT="5",
            RATE_WAIT_BUDGET_SECONDS="0",
            REDIS_KEY_PREFIX=os.environ["REDIS_KEY_PREFIX"] + "openbudgets:",
        )
    yield server
    server.stop()


async def _calls(env: McpEnv, subscriber: dict, count: int) -> tuple[list, object]:
    conn = await sync_to_async(open_connection)(env, subscriber)
    async with mcp_session(env.gateway.url + "/open", conn.token, "2026-07-28") as client:
        return [await client.call_tool("get_site", {}) for _ in range(count)], conn


async def test_one_subscriber_cannot_starve_another_beyond_the_site_budget(
    transactional_db, demo_users, budget_gateway, mcp_sandbox
):
    env = McpEnv(gateway=budget_gateway, sandbox=mcp_sandbox)
    answers, reader = await _calls(env, READER, 4)
    assert [a.is_error for a in answers] == [False, False, False, True]
    over = answers[3].structured_content
    assert over["error"] == "rate_limited" and 1 <= over["retry_after"] <= 60
    assert "limit for this subscriber (3 per 60 s) is reached" in over["message"]
    assert "nothing was sent" in over["message"]

    # The site's other subscriber gets the rest of the site's budget (5 - 3), then the site's refusal.
    answers, second = await _calls(env, SECOND, 3)
    assert [a.is_error for a in answers] == [False, False, True]
    assert "all subscribers of site 14 (5 per 60 s)" in answers[2].structured_content["message"]

    # Site 15 (same account) and the staff's Core tools are not held back.
    answers, weekly = await _calls(env, WEEKLY, 3)
    assert not any(a.is_error for a in answers)
    token = await sync_to_async(env.token)("acme")
    async with mcp_session(env.url, token, "2026-07-28") as client:
        assert not (await client.call_tool("list_plans", {"site_id": 14})).is_error

    rows = await audit_rows_async(4, connection_id=reader.connection_id)
    assert [(r.outcome, r.upstream_status, r.site_id, r.customer_id) for r in rows] == [
        ("ok", 200, 14, reader.customer_id)
    ] * 3 + [("rate_limited", None, 14, reader.customer_id)]
