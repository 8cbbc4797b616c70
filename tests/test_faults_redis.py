"""Redis (the shared limiter) killed and restarted in the middle of load, through the real
gateway: calls fail fast and clearly while it is down (fail closed: nothing is sent
upstream), succeed again as soon as it is back without restarting the gateway, no write
reaches the upstream twice, and every call leaves its audit row.

The gateway under test uses a private redis-server on a free port (`own_redis`); the
shared Redis on 6379 is never touched. tests/test_ratelimit_redis_down.py covers the
same outage one call at a time.
"""

import asyncio
import time

import pytest

from devtools.oauth_client import obtain_tokens
from tests.support.faults import PLANS_ARGS, call_tool, new_customer_args, start_fault_gateway, write_bodies
from tests.support.mcp import PASSWORDS, audit_rows_async, mcp_session

DOWN_MESSAGE = "rate limiter unavailable (Redis down); no request was sent"
WORKERS, LOAD_SECONDS, DOWN_AT, DOWN_FOR = 4, 4.0, 1.0, 1.2


@pytest.fixture
def redis_gateway(faults, own_redis, fault_sandbox, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_fault_gateway(fault_sandbox, REDIS_URL=own_redis.url)
    yield server
    server.stop()


async def test_redis_restarted_in_the_middle_of_load(faults, own_redis, redis_gateway):
    token = obtain_tokens(redis_gateway.url, "demo", PASSWORDS["demo"], "acme")["access_token"]
    sandbox, pid = faults.sandbox, redis_gateway.proc.pid
    since = sandbox.last_seq()
    start = time.monotonic()
    marks: dict[str, float] = {}
    outcomes = []

    async def worker(index: int) -> None:
        async with mcp_session(redis_gateway.url + "/", token, "2026-07-28") as client:
            turn = 0
            while time.monotonic() - start < LOAD_SECONDS:
                # While Redis is down only worker 0 calls, so most of the gateway's pooled
                # Redis connections are still the ones the crash broke when Redis is back:
                # the first calls after the restart must get through on them anyway.
                if index and "down" in marks and "up" not in marks:
                    await asyncio.sleep(0.01)
                    continue
                turn += 1
                call = (
                    ("create_customer", new_customer_args(f"redis{index}")) if turn % 2 else ("list_plans", PLANS_ARGS)
                )
                began = time.monotonic() - start
                outcome = await call_tool(client, *call)
                outcomes.append((began, outcome))

    async def restart_redis() -> None:
        await asyncio.sleep(DOWN_AT)
        own_redis.proc.kill()  # no goodbye: a crash, not a shutdown
        own_redis.proc.wait()
        marks["down"] = time.monotonic() - start
        await asyncio.sleep(DOWN_FOR)
        await asyncio.to_thread(own_redis.start)
        marks["up"] = time.monotonic() - start

    await asyncio.gather(restart_redis(), *(worker(i) for i in range(WORKERS)))

    failed = [(began, o) for began, o in outcomes if o.is_error]
    assert failed, "the outage was noticed"
    for began, outcome in failed:
        assert outcome.error == "upstream_unavailable" and outcome.text == DOWN_MESSAGE, outcome
        assert outcome.seconds < 1.5, "fails fast, does not hang"
        assert marks["down"] - 0.1 < began + outcome.seconds and began < marks["up"]
    # What ended before the crash succeeded, and from a moment after the restart, everything does.
    assert all(not o.is_error for began, o in outcomes if began + o.seconds < marks["down"])
    recovered = [o for began, o in outcomes if began > marks["up"]]
    assert len(recovered) >= WORKERS and all(not o.is_error for o in recovered), recovered
    assert redis_gateway.proc.poll() is None and redis_gateway.proc.pid == pid

    # Fail closed: a refused write never left the gateway; a granted one arrived once.
    entries = sandbox.log(since)
    bodies = write_bodies(entries)
    writes = [o for _, o in outcomes if o.tool == "create_customer"]
    assert set(bodies.values()) == {1}
    assert len(bodies) == sum(not w.is_error for w in writes)
    assert len([e for e in entries if e["method"] == "GET"]) == sum(
        not o.is_error for _, o in outcomes if o.tool == "list_plans"
    )
    rows = await audit_rows_async(len(outcomes))
    assert len(rows) == len(outcomes)
    assert sum(r.outcome == "error" and r.error_message == DOWN_MESSAGE for r in rows) == len(failed)
