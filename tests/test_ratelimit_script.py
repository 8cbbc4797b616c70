"""The limiter's Lua scripts against the real (shared) Redis, with fast parameters.

Every key lives under this run's REDIS_KEY_PREFIX and a per-test account id. `grant`
stands for a whole request: a slot is acquired and the "answer" comes back at once.
"""

import asyncio
import multiprocessing
import time

import pytest
import redis as redis_lib
from django.conf import settings

from mcp_bridge.upstream.errors import RateLimited
from mcp_bridge.upstream.limiter import AccountKeys, LimitConfig, RedisRateGate, request_finished
from mcp_bridge.upstream.usage import peek
from tests.support.ratelimit import StartLine, hammer_process, max_in_window

pytestmark = pytest.mark.usefixtures("close_limiter_redis")

FAST = dict(limit=10, window=2.0, margin=0, wait_budget=0.0, background_share=0.5)


def fast(**overrides) -> LimitConfig:
    return LimitConfig(**{**FAST, **overrides})


async def grant(gate: RedisRateGate, account_id: int, **kwargs):
    """Acquire a slot and finish the request at once; returns (decision, finish time)."""
    decision = await gate.try_acquire(account_id, **kwargs)
    finished = await request_finished(account_id, 0.001, decision.call_id) if decision.allowed else None
    return decision, finished


def account_keys_in_redis(account_id: int) -> dict[bytes, tuple]:
    """Every key of the account with its value dump and TTL (a snapshot to compare)."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        keys = sorted(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:{{{account_id}}}:*"))
        return {key: (client.dump(key), client.pttl(key) // 1000) for key in keys}
    finally:
        client.close()


def test_two_processes_never_exceed_the_limit_in_any_rolling_window(limiter_account):
    """Two processes × 4 coroutines race for 10 slots per 2 s for 3 windows."""
    config = fast()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_line = StartLine(ctx)  # the race starts once both processes are up
    procs = [ctx.Process(target=hammer_process, args=(limiter_account, FAST, start_line, results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    start_line.release(procs, 3 * config.window)
    grants_per_process = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
        assert proc.exitcode == 0
    assert all(grants_per_process), "both processes got slots"
    grants = sorted(t for grants in grants_per_process for t in grants)

    # The guarantee, checked on Redis's own grant times: never more than the cap in any
    # rolling window, whatever its alignment.
    assert max_in_window(grants, config.window) == config.cap
    # And the budget is used: the cap in each window from the first grant on.
    in_three_windows = [t for t in grants if t < grants[0] + 3 * config.window]
    assert len(in_three_windows) >= 0.95 * 3 * config.cap


async def test_retry_after_is_the_exact_time_until_the_oldest_request_leaves(limiter_account):
    gate = RedisRateGate(fast())
    first, first_finished = await grant(gate, limiter_account)
    assert first.allowed and first.remaining == 9
    await asyncio.sleep(0.3)
    for _ in range(9):
        assert (await grant(gate, limiter_account))[0].allowed
    refused = await gate.try_acquire(limiter_account)
    assert not refused.allowed and refused.remaining == 0
    # The oldest request's slot frees one window after its answer came back.
    assert refused.retry_after == pytest.approx(first_finished + 2.0 - refused.now, abs=1e-6)
    assert 1.6 < refused.retry_after < 1.71

    await asyncio.sleep(refused.retry_after + 0.002)
    again, _ = await grant(gate, limiter_account)
    assert again.allowed and again.remaining == 0


async def test_a_request_in_flight_holds_its_slot_until_answered_plus_a_window(limiter_account):
    gate = RedisRateGate(fast(hold=30.0))
    granted = [await gate.try_acquire(limiter_account) for _ in range(10)]
    refused = await gate.try_acquire(limiter_account)
    # Nothing has been answered: no slot can free sooner than a window from now.
    assert not refused.allowed and refused.retry_after == pytest.approx(2.0)
    assert peek(limiter_account, fast()).next_free_in == pytest.approx(2.0)
    await asyncio.sleep(0.5)
    finished = await request_finished(limiter_account, 0.5, granted[3].call_id)
    refused = await gate.try_acquire(limiter_account)
    assert refused.retry_after == pytest.approx(finished + 2.0 - refused.now, abs=1e-6)


async def test_a_caller_that_never_reports_back_frees_its_slot_after_the_hold(limiter_account):
    gate = RedisRateGate(fast(hold=0.3, limit=2))
    assert (await gate.try_acquire(limiter_account)).allowed
    first_unanswered = await gate.try_acquire(limiter_account)
    assert first_unanswered.allowed
    refused = await gate.try_acquire(limiter_account)
    assert not refused.allowed
    await asyncio.sleep(0.3 + 2.0 + 0.01)
    assert (await gate.try_acquire(limiter_account)).allowed


async def test_acquire_remembers_its_request_for_the_clients_finish_hook(limiter_account):
    gate = RedisRateGate(fast(hold=30.0, limit=1))
    await gate.acquire(limiter_account)
    # What core_api's metrics hook does after the response: no call id at hand.
    await request_finished(limiter_account, 0.01)
    refused = await gate.try_acquire(limiter_account)
    assert 1.9 < refused.retry_after < 2.0


async def test_safety_margin_is_kept_back(limiter_account):
    gate = RedisRateGate(fast(margin=3))
    granted = [(await grant(gate, limiter_account))[0].allowed for _ in range(10)]
    assert granted == [True] * 7 + [False] * 3


async def test_background_share_leaves_the_rest_to_interactive_calls(limiter_account):
    config = fast(background_share=0.3)
    gate = RedisRateGate(config)
    background = [await grant(gate, limiter_account, background=True) for _ in range(5)]
    assert [d.allowed for d, _ in background] == [True, True, True, False, False]
    # The refused background request learns when the oldest background request leaves.
    assert background[3][0].retry_after == pytest.approx(background[0][1] + 2.0 - background[3][0].now, abs=1e-6)
    interactive = [(await grant(gate, limiter_account))[0].allowed for _ in range(8)]
    assert interactive == [True] * 7 + [False]
    state = peek(limiter_account, config)
    assert (state.in_window, state.background_in_window, state.remaining) == (10, 3, 0)


async def test_upstream_429_blocks_every_acquire_until_retry_after(limiter_account):
    gate = RedisRateGate(fast())
    other_process_gate = RedisRateGate(fast())
    await gate.upstream_rate_limited(limiter_account, 1.0)
    refused = await other_process_gate.try_acquire(limiter_account)
    assert not refused.allowed
    assert 0.9 < refused.retry_after <= 1.0
    assert peek(limiter_account, fast()).blocked_for > 0.8
    await asyncio.sleep(refused.retry_after + 0.002)
    assert (await grant(other_process_gate, limiter_account))[0].allowed
    assert peek(limiter_account, fast()).totals().upstream_429s == 1


async def test_a_shorter_retry_after_never_shortens_a_block(limiter_account):
    gate = RedisRateGate(fast())
    await gate.upstream_rate_limited(limiter_account, 3.0)
    await gate.upstream_rate_limited(limiter_account, 1.0)
    assert (await gate.try_acquire(limiter_account)).retry_after > 2.5


async def test_acquire_waits_within_the_budget_and_is_seen_waiting(limiter_account):
    config = fast(wait_budget=3.0)
    gate = RedisRateGate(config)
    for _ in range(10):
        await grant(gate, limiter_account)
    started = time.monotonic()
    waiter = asyncio.create_task(gate.acquire(limiter_account))
    await asyncio.sleep(0.3)
    state = peek(limiter_account, config)
    assert state.waiting == 1 and state.remaining == 0
    decision = await waiter
    assert decision.allowed
    assert 1.0 < time.monotonic() - started < 2.5
    state = peek(limiter_account, config)
    assert state.waiting == 0
    assert (state.totals().calls, state.totals().waits, state.totals().rejections) == (11, 1, 0)


async def test_acquire_refuses_with_retry_after_beyond_the_budget(limiter_account):
    config = fast(wait_budget=0.5)
    gate = RedisRateGate(config)
    for _ in range(10):
        await grant(gate, limiter_account)
    with pytest.raises(RateLimited) as caught:
        await gate.acquire(limiter_account)
    assert caught.value.retry_after == 2
    assert str(caught.value) == "rate limit for this account reached, retry in 2 s"
    state = peek(limiter_account, config)
    assert state.totals().rejections == 1 and state.waiting == 0


async def test_peek_writes_nothing(limiter_account):
    config = fast()
    assert peek(limiter_account, config).in_window == 0
    assert account_keys_in_redis(limiter_account) == {}, "peeking an idle account creates no key"
    gate = RedisRateGate(config)
    started = time.monotonic()
    for _ in range(4):
        await grant(gate, limiter_account)
    before = account_keys_in_redis(limiter_account)
    state = peek(limiter_account, config)
    elapsed = time.monotonic() - started
    assert account_keys_in_redis(limiter_account) == before
    assert (state.in_window, state.remaining, state.totals().calls) == (4, 6, 4)
    # The first slot frees a window (2 s) after it was taken: at most the time the grants and
    # the peek took ago (a loaded machine may take more than 0.1 s for them).
    assert 2.0 - elapsed - 0.01 <= state.next_free_in <= 2.0


async def test_a_lost_window_holds_the_account_to_the_margin_for_a_window(limiter_account):
    """Redis forgets the account's keys (a restart without persistence) while this process
    uses the account: until a full window has passed only the safety margin may start,
    however large the cap (the hold is one value, not a stand-in per forgotten request)."""
    for cap_and_margin in ({"limit": 10, "margin": 2}, {"limit": 1_000_000, "margin": 2}):
        gate = RedisRateGate(fast(**cap_and_margin))
        assert (await grant(gate, limiter_account))[0].allowed  # the account is in use here
        client = redis_lib.Redis.from_url(settings.REDIS_URL)
        client.delete(*client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:{{{limiter_account}}}:*"))
        client.close()
        assert [(await grant(gate, limiter_account))[0].allowed for _ in range(3)] == [True, True, False]
        refused = await gate.try_acquire(limiter_account)
        assert not refused.allowed and 1.8 < refused.retry_after <= 2.0
        await asyncio.sleep(refused.retry_after + 0.01)
        assert all([(await grant(gate, limiter_account))[0].allowed for _ in range(5)])
        client = redis_lib.Redis.from_url(settings.REDIS_URL)
        client.delete(*client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:{{{limiter_account}}}:*"))
        client.close()


async def test_every_key_is_prefixed_hash_tagged_and_expires(limiter_account):
    gate = RedisRateGate(fast())
    for background in (True, False):
        await grant(gate, limiter_account, background=background)
    await gate.upstream_rate_limited(limiter_account, 1.0)
    await gate.try_acquire(limiter_account, wait_budget=5.0)  # refused, becomes a waiter
    keys = account_keys_in_redis(limiter_account)
    expected = AccountKeys.of(limiter_account)
    assert set(keys) == {
        k.encode()
        for k in (
            expected.log,
            expected.background,
            expected.block,
            expected.waiters,
            expected.usage,
            expected.latency,
            expected.generation,
        )
    }
    for key, (_, ttl) in keys.items():
        assert key.startswith(f"{settings.REDIS_KEY_PREFIX}rl:{{{limiter_account}}}:".encode())
        assert 0 <= ttl <= 2 * 3600, key
