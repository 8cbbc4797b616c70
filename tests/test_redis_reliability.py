"""Redis faults outside the plain outage (issue 12), through a real gateway process:

- a server that accepts connections and closes them (a TCP/TLS proxy whose Redis is
  down), or accepts and never answers, in place of Redis;
- a real Redis at `maxclients`, its free slots held by idle sockets;
- `SCRIPT FLUSH` while tool calls run;
- the gateway's Redis turned into a replica (READONLY, as an old primary after a failover);
- a Redis without persistence restarted in the middle of load (the limiter's lost window).

Every tool call must get an answer within the deadline (success or the documented
fail-closed error) and leave its audit row, and the gateway must stop on SIGTERM within
its graceful timeout. Private redis-servers and fake servers only: the shared Redis on
6379 is never reconfigured.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis as redis_lib

from devtools.oauth_client import obtain_tokens
from tests.support.faults import (
    PLANS_ARGS,
    call_tool,
    new_customer_args,
    start_fault_gateway,
)
from tests.support.mcp import PASSWORDS, audit_rows_async, mcp_session
from tests.support.ratelimit import (
    TIGHT_GATEWAY_ENV,
    TIGHT_LIMIT,
    TIGHT_WINDOW,
    OwnRedis,
    log_times,
    max_in_window,
)
from tests.support.redis_servers import ClosingServer, IdleSockets
from tests.support.sandbox import SandboxClient
from tests.support.servers import start_gateway

DOWN_MESSAGE = "rate limiter unavailable (Redis down); no request was sent"
DEADLINE = 0.5  # RATE_REDIS_TIMEOUT_SECONDS of the fault gateways (FAST_FAIL_ENV)
# One deadline for the token check's epoch read, one for the limiter, plus the rest of a
# call on a busy shared machine.
ANSWER_WITHIN = 2 * DEADLINE + 2.0
CALLS = 10


async def concurrent_calls(url: str, token: str, calls: list[tuple[str, dict]]) -> list:
    """Each call in its own SDK session, all at once; (outcome or exception) each."""

    async def one(name: str, arguments: dict):
        async with mcp_session(url, token, "2026-07-28") as client:
            return await call_tool(client, name, arguments)

    return await asyncio.wait_for(asyncio.gather(*(one(*c) for c in calls), return_exceptions=True), 60)


def mixed_calls(count: int, tag: str) -> list[tuple[str, dict]]:
    return [("create_customer", new_customer_args(tag)) if i % 2 else ("list_plans", PLANS_ARGS) for i in range(count)]


def assert_stops_on_sigterm(server, within: float = 10.0) -> None:
    """SIGTERM ends the gateway within `within` s (uvicorn's graceful shutdown: the lifespan
    drains the audit rows and the scripts nobody waited for, each bounded)."""
    started = time.monotonic()
    server.stop()  # SIGTERM, then SIGKILL after 10 s
    took = time.monotonic() - started
    assert server.proc.returncode is not None and server.proc.returncode != -9, "was killed, ignored SIGTERM"
    assert took < within, f"took {took:.1f} s to stop"


@pytest.fixture
def token_for(faults):
    """An access token from the shared fault gateway. The gateways of these tests are its
    replicas (same database, same `PUBLIC_URL`, see `replica_env`), so it works at each."""
    return faults.token()


def replica_env(faults, redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "PUBLIC_URL": faults.gateway.url}


@pytest.mark.parametrize("silent", [False, True], ids=["accepts-then-closes", "accepts-never-answers"])
async def test_every_call_answered_when_redis_accepts_and_fails(
    faults, token_for, fault_sandbox, django_db_blocker, silent
):
    sandbox = faults.sandbox
    with ClosingServer(silent=silent) as fake_redis:
        with django_db_blocker.unblock():
            gateway = start_fault_gateway(fault_sandbox, **replica_env(faults, fake_redis.url))
        try:
            since = sandbox.last_seq()
            outcomes = await concurrent_calls(gateway.url + "/", token_for, mixed_calls(CALLS, "closing"))
            assert fake_redis.accepted > 0, "the gateway did reach the fake Redis"
            for outcome in outcomes:
                assert not isinstance(outcome, BaseException), outcome
                assert outcome.error == "upstream_unavailable" and outcome.text == DOWN_MESSAGE, outcome
                assert outcome.seconds < ANSWER_WITHIN, outcome
            assert sandbox.log(since) == [], "fail closed: nothing reached the upstream"
            rows = await audit_rows_async(CALLS)
            assert len(rows) == CALLS
            assert all(r.outcome == "error" and r.error_message == DOWN_MESSAGE for r in rows[:CALLS])
        finally:
            assert_stops_on_sigterm(gateway)


async def test_every_call_answered_with_redis_at_maxclients(faults, token_for, fault_sandbox, django_db_blocker):
    """The issue's minimal input: Redis at `maxclients`, the gateway's connections killed,
    the free slots held by idle sockets; then tool calls. Afterwards service resumes."""
    own = OwnRedis(persistent=False, extra=("--maxclients", "6")).start()
    sandbox = faults.sandbox
    try:
        with django_db_blocker.unblock():
            gateway = start_fault_gateway(fault_sandbox, **replica_env(faults, own.url))
        url = gateway.url + "/"
        try:
            before = await concurrent_calls(url, token_for, [("list_plans", PLANS_ARGS)] * 3)
            assert all(not o.is_error for o in before), before

            admin = redis_lib.Redis(port=own.port)
            admin.client_kill_filter(_type="normal", skipme=True)
            admin.close()  # frees its own slot too
            idle = IdleSockets(own.port, 6)  # every slot taken
            try:
                since = sandbox.last_seq()
                outcomes = await concurrent_calls(url, token_for, mixed_calls(CALLS, "maxclients"))
                for outcome in outcomes:
                    assert not isinstance(outcome, BaseException), outcome
                    assert outcome.error == "upstream_unavailable" and outcome.text == DOWN_MESSAGE, outcome
                    assert outcome.seconds < ANSWER_WITHIN, outcome
                assert sandbox.log(since) == []
                rows = await audit_rows_async(len(before) + CALLS)
                assert [r.error_message for r in rows[len(before) :]] == [DOWN_MESSAGE] * CALLS
            finally:
                idle.close()

            after = await concurrent_calls(url, token_for, [("list_plans", PLANS_ARGS)] * 3)
            assert all(not o.is_error for o in after), "recovers by itself once slots are free"
        finally:
            assert_stops_on_sigterm(gateway)
    finally:
        own.cleanup()


async def test_script_flush_under_load_changes_nothing_a_caller_sees(
    faults, token_for, fault_sandbox, django_db_blocker
):
    """SCRIPT FLUSH every 20 ms while calls run: no call is refused for budget that is free,
    and every finished request frees its slot one window after its answer (not after the
    in-flight hold of ~24 s, which is what a lost "finished" script leaves behind)."""
    limit, window = 30, 2.0
    own = OwnRedis(persistent=False).start()
    try:
        with django_db_blocker.unblock():
            gateway = start_fault_gateway(
                fault_sandbox,
                **replica_env(faults, own.url),
                RATE_LIMIT=str(limit),
                RATE_WINDOW_SECONDS=str(window),
                RATE_SAFETY_MARGIN="0",
                RATE_WAIT_BUDGET_SECONDS="0",
                CORE_API_TIMEOUT="5",
                # What is under test is the script cache, not the deadline: a busy shared
                # machine must not turn a slow answer into a refusal here.
                RATE_REDIS_TIMEOUT_SECONDS="2",
            )
        stop = threading.Event()

        def flush_scripts() -> None:
            client = redis_lib.Redis(port=own.port)
            while not stop.is_set():
                client.script_flush()
                time.sleep(0.02)
            client.close()

        flusher = threading.Thread(target=flush_scripts, daemon=True)
        flusher.start()
        try:
            url = gateway.url + "/"
            # Three rounds, each using the whole budget, the next one a window after the
            # last answer: a slot held past its window would refuse a call of the next round.
            for round_no in range(3):
                outcomes = await concurrent_calls(url, token_for, [("list_plans", PLANS_ARGS)] * limit)
                refused = [o for o in outcomes if isinstance(o, BaseException) or o.is_error]
                assert refused == [], (round_no, refused[:3])
                await asyncio.sleep(window + 0.3)
        finally:
            stop.set()
            flusher.join(timeout=5)
        client = redis_lib.Redis(port=own.port)
        held = [
            key for key in client.scan_iter(match=b"*rl:*:log") if client.zcount(key, f"({time.time() * 1e6}", "+inf")
        ]
        client.close()
        assert held == [], "no request is counted as still in flight"
        assert_stops_on_sigterm(gateway)
    finally:
        own.cleanup()


@pytest.fixture
def restartable_gateway(tight_sandbox, django_db_blocker, other):
    own = OwnRedis(persistent=False).start()
    with django_db_blocker.unblock():
        server = start_gateway(tight_sandbox, REDIS_URL=own.url, RATE_REDIS_TIMEOUT_SECONDS="0.5", **TIGHT_GATEWAY_ENV)
    yield server, own
    server.stop()
    own.cleanup()


async def test_no_upstream_429_across_a_redis_restart_without_persistence(restartable_gateway, tight_sandbox, other):
    """Callers keep the account at its limit; Redis (no AOF, no RDB) restarts in the middle.
    The limiter notices it lost its window and keeps the account within what the forgotten
    window may still count upstream until a full window has passed: the sandbox, which
    kept counting, never answers 429. Calls succeed again after that window."""
    gateway, own = restartable_gateway
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "other")["access_token"]
    sandbox = SandboxClient(tight_sandbox)
    since = sandbox.last_seq()
    start = time.monotonic()
    outcomes: list[tuple[float, bool]] = []
    # Restart once the account has used its whole budget (on a busy machine that takes
    # longer than a window), then keep the load on for 2.5 windows.
    marks: dict[str, float] = {}

    async def caller() -> None:
        async with mcp_session(gateway.url + "/", token, "2026-07-28") as client:
            while "until" not in marks or time.monotonic() < marks["until"]:
                began = time.monotonic() - start
                result = await client.call_tool("list_plans", {"site_id": 27, "per_page": 1})
                outcomes.append((began, result.is_error))
                if result.is_error:
                    await asyncio.sleep(0.05)

    async def restart() -> None:
        give_up = time.monotonic() + 30
        while sum(not is_error for _, is_error in outcomes) < TIGHT_LIMIT and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
        marks["restart_at"] = time.monotonic() - start
        await asyncio.to_thread(own.stop)
        await asyncio.to_thread(own.start)
        marks["up"] = time.time()
        marks["until"] = time.monotonic() + 2.5 * TIGHT_WINDOW

    await asyncio.gather(restart(), *(caller() for _ in range(6)))

    entries = sandbox.log(since, account="other")
    statuses = [e["status"] for e in entries]
    assert 429 not in statuses, f"{statuses.count(429)} upstream 429s"
    assert max_in_window(log_times(entries), TIGHT_WINDOW) <= TIGHT_LIMIT
    before = [is_error for began, is_error in outcomes if began < marks["restart_at"]]
    assert before.count(False) >= TIGHT_LIMIT, "the account was at its limit before the restart"
    # A full window after the restart the account gets its whole budget again.
    recovered = [t for t in log_times(entries) if t > marks["up"] + TIGHT_WINDOW]
    assert len(recovered) >= TIGHT_LIMIT // 2, len(recovered)


async def test_readonly_after_a_failover_fails_closed_and_recovers(faults, token_for, fault_sandbox, django_db_blocker):
    """The gateway's Redis becomes a replica (what its old primary does after a failover):
    writes answer READONLY. Every call is answered within the deadline with the documented
    error and nothing reaches the upstream; once it is a primary again calls go through
    (its data is the other node's then: the lost window holds the account to the margin)."""
    primary, gateways_redis = OwnRedis(persistent=False).start(), OwnRedis(persistent=False).start()
    sandbox = faults.sandbox
    try:
        with django_db_blocker.unblock():
            gateway = start_fault_gateway(
                fault_sandbox, **replica_env(faults, gateways_redis.url), RATE_SAFETY_MARGIN="100"
            )
        url = gateway.url + "/"
        try:
            assert all(not o.is_error for o in await concurrent_calls(url, token_for, [("list_plans", PLANS_ARGS)] * 2))
            admin = redis_lib.Redis(port=gateways_redis.port)
            admin.replicaof("127.0.0.1", primary.port)
            since = sandbox.last_seq()
            outcomes = await concurrent_calls(url, token_for, mixed_calls(6, "readonly"))
            for outcome in outcomes:
                assert not isinstance(outcome, BaseException), outcome
                assert outcome.error == "upstream_unavailable" and outcome.text == DOWN_MESSAGE, outcome
                assert outcome.seconds < ANSWER_WITHIN, outcome
            assert sandbox.log(since) == []
            admin.replicaof("NO", "ONE")
            admin.close()
            after = await concurrent_calls(url, token_for, [("list_plans", PLANS_ARGS)] * 3)
            assert all(not o.is_error for o in after), after
        finally:
            assert_stops_on_sigterm(gateway)
    finally:
        primary.cleanup()
        gateways_redis.cleanup()
