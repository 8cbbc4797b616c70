"""The Core API misbehaving, through the real gateway (MCP SDK client → uvicorn gateway →
sandbox with faults switched on at runtime): slow past the timeout, 5xx, a storm of
forced 429s, connection refused.

Each case ends in clear tool errors, recovers without restarting the gateway, never sends
a write twice (the sandbox's request log counts each body's SHA-256) and leaves exactly
one audit row per tool call. Timeouts are compressed (tests.support.faults.FAST_FAIL_ENV).
"""

import asyncio
import time

import pytest

from devtools.oauth_client import obtain_tokens
from tests.support.faults import (
    ACME_SITE,
    PLANS_ARGS,
    call_tool,
    call_tools,
    new_customer_args,
    start_fault_gateway,
    write_bodies,
)
from tests.support.mcp import PASSWORDS, audit_rows, audit_rows_async, mcp_session

PLANS = ("list_plans", PLANS_ARGS)
UNSURE = "may or may not have been applied"


def wait_for_log(sandbox, since: int, count: int, timeout: float = 5.0) -> list[dict]:
    """The sandbox's log entries after `since`, once there are `count` (requests still in
    the sandbox's injected latency are logged when they finish)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = sandbox.log(since)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def customers_with_email(sandbox, email: str) -> list[dict]:
    return sandbox.ok("GET", "/customers", site_id=ACME_SITE, params={"filter[email]": f"eq:{email}"})


def assert_gateway_never_restarted(gateway, pid: int) -> None:
    assert gateway.proc.poll() is None and gateway.proc.pid == pid


def test_slow_upstream_times_out_clearly_and_a_write_is_never_resent(faults):
    sandbox, token, pid = faults.sandbox, faults.token(), faults.gateway.proc.pid
    sandbox.configure(latency_ms=1500)  # three times the gateway's 0.5 s timeout
    since = sandbox.last_seq()
    write = new_customer_args("slow")
    read, created = call_tools(faults.url, token, [PLANS, ("create_customer", write)])

    # A read is safe to repeat: tried three times, then a clear "timed out".
    assert read.error == "upstream_unavailable" and "timed out" in read.text
    assert "may_have_been_applied" not in read.structured
    assert read.seconds < 3.0
    # A write that timed out may have been applied: said so, and not repeated.
    assert created.error == "upstream_unavailable"
    assert created.structured["may_have_been_applied"] is True
    assert UNSURE in created.text and "Before trying again, look for it with list_customers" in created.text
    assert created.seconds < 1.5

    entries = wait_for_log(sandbox, since, 4)
    assert [e["method"] for e in entries].count("GET") == 3
    assert list(write_bodies(entries).values()) == [1]
    sandbox.configure(latency_ms=0)
    # The sandbox did apply it after the gateway gave up: exactly once.
    assert len(customers_with_email(sandbox, write["email"])) == 1

    recovered = call_tools(faults.url, token, [PLANS, ("create_customer", new_customer_args("after-slow"))])
    assert [r.is_error for r in recovered] == [False, False]
    assert_gateway_never_restarted(faults.gateway, pid)
    rows = audit_rows(4)
    assert [(r.tool, r.outcome, r.upstream_status) for r in rows] == [
        ("list_plans", "error", None),
        ("create_customer", "error", None),
        ("list_plans", "ok", 200),
        ("create_customer", "ok", 201),
    ]
    assert UNSURE in rows[1].error_message


def test_upstream_5xx_is_retried_for_reads_never_for_writes(faults):
    sandbox, token, pid = faults.sandbox, faults.token(), faults.gateway.proc.pid
    sandbox.configure(error_rate=1)
    since = sandbox.last_seq()
    write = new_customer_args("fivexx")
    read, created = call_tools(faults.url, token, [PLANS, ("create_customer", write)])

    assert read.error == "upstream_unavailable" and read.structured["upstream_status"] in (500, 502, 503)
    assert read.text.startswith("Core API error 50") and UNSURE not in read.text
    assert created.error == "upstream_unavailable" and created.structured["may_have_been_applied"] is True
    assert UNSURE in created.text
    entries = sandbox.log(since)
    assert [(e["method"], e["fault"]) for e in entries] == [("GET", "error")] * 3 + [("POST", "error")]
    # Injected before processing: the gateway could not know, but nothing was created.
    sandbox.configure(error_rate=0)
    assert customers_with_email(sandbox, write["email"]) == []

    recovered = call_tools(faults.url, token, [PLANS])
    assert not recovered[0].is_error
    assert_gateway_never_restarted(faults.gateway, pid)
    assert [(r.outcome, r.upstream_status) for r in audit_rows(3)] == [
        ("error", read.structured["upstream_status"]),
        ("error", created.structured["upstream_status"]),
        ("ok", 200),
    ]


async def test_a_flaky_upstream_under_concurrent_load_never_gets_a_write_twice(faults):
    sandbox, token = faults.sandbox, faults.token()
    sandbox.configure(error_rate=0.5)
    since = sandbox.last_seq()

    async def session(index: int) -> list:
        async with mcp_session(faults.url, token, "2026-07-28") as client:
            outcomes = []
            for _round in range(6):
                outcomes.append(await call_tool(client, *PLANS))
                outcomes.append(await call_tool(client, "create_customer", new_customer_args(f"flaky{index}")))
            return outcomes

    outcomes = [o for batch in await asyncio.gather(*(session(i) for i in range(4))) for o in batch]
    sandbox.configure(error_rate=0)
    entries = sandbox.log(since)

    reads = [o for o in outcomes if o.tool == "list_plans"]
    writes = [o for o in outcomes if o.tool == "create_customer"]
    for outcome in outcomes:
        assert not outcome.is_error or outcome.error == "upstream_unavailable", outcome
    assert all(UNSURE in w.text for w in writes if w.is_error)
    # Retries rescue most reads (each attempt fails half the time) and never exceed two.
    gets = [e for e in entries if e["method"] == "GET"]
    assert len(reads) <= len(gets) <= 3 * len(reads)
    assert sum(not r.is_error for r in reads) >= len(reads) // 2
    # Every write reached the upstream exactly once, whatever its fate.
    bodies = write_bodies(entries)
    assert len(bodies) == len(writes) and set(bodies.values()) == {1}
    created = [e for e in entries if e["method"] == "POST" and e["status"] == 201]
    assert len(created) == sum(not w.is_error for w in writes)
    rows = await audit_rows_async(len(outcomes))
    assert len(rows) == len(outcomes)
    assert sorted(r.outcome for r in rows) == sorted("error" if o.is_error else "ok" for o in outcomes)


@pytest.fixture
def second_gateway(faults, fault_sandbox, django_db_blocker):
    """Another gateway process on the same Redis prefix: a second worker for one account."""
    with django_db_blocker.unblock():
        server = start_fault_gateway(fault_sandbox)
    yield server
    server.stop()


async def test_a_storm_of_429s_pauses_every_worker(faults, second_gateway):
    sandbox = faults.sandbox
    gateways = [faults.gateway, second_gateway]
    tokens = [obtain_tokens(g.url, "demo", PASSWORDS["demo"], "acme")["access_token"] for g in gateways]
    sandbox.configure(force_429=True)
    since = sandbox.last_seq()
    until = time.monotonic() + 4.0
    writes: list[dict] = []

    async def worker(url: str, token: str, index: int) -> list:
        async with mcp_session(url, token, "2026-07-28") as client:
            # Staggered starts: without a shared pause each caller would keep its own
            # rhythm, and its requests would land in the others' gaps.
            await asyncio.sleep(0.15 * index)
            write = new_customer_args(f"storm{index}")
            writes.append(write)
            outcomes = [await call_tool(client, "create_customer", write)]
            while time.monotonic() < until:
                outcomes.append(await call_tool(client, *PLANS))
            return outcomes

    jobs = [
        worker(g.url + "/", t, 3 * n + i)
        for n, (g, t) in enumerate(zip(gateways, tokens, strict=True))
        for i in range(3)
    ]
    outcomes = [o for batch in await asyncio.gather(*jobs) for o in batch]
    sandbox.configure(force_429=False)
    entries = sandbox.log(since)

    for outcome in outcomes:
        assert outcome.error == "rate_limited", outcome
        assert outcome.structured["retry_after"] >= 1
        assert outcome.text == f"rate limit for this account reached, retry in {outcome.structured['retry_after']} s"
    assert {e["fault"] for e in entries} == {"force_429"}
    # At most three attempts per call (a 429 means "not processed", so even writes retry)...
    assert len(entries) <= 3 * len(outcomes)
    # ...and no hammering: each 429 blocks the account in Redis for its Retry-After (1 s),
    # so both gateways send nothing until it has passed. Requests arrive in bursts (the
    # callers released together), never in the gap after one.
    times = sorted(_epoch(e["time"]) for e in entries)
    for t in times:
        inside_gap = [u for u in times if t + 0.25 < u < t + 0.85]
        assert not inside_gap, f"requests {[round(u - t, 3) for u in inside_gap]} s after a 429"
    assert len(times) <= 6 * (4.0 + 2) + 6  # six callers, one burst per second at most
    # A 429 means the write was not processed, so offering it again is safe; none was
    # processed, so nothing was created.
    assert set(write_bodies(entries).values()) <= {1, 2, 3}
    assert not write_bodies([e for e in entries if e["status"] != 429])
    for write in writes:
        assert customers_with_email(sandbox, write["email"]) == []

    # Recovers by itself once the upstream does (the last block lasts 1 s).
    await asyncio.sleep(1.1)
    after = await asyncio.gather(*(_one_call(g.url + "/", t) for g, t in zip(gateways, tokens, strict=True)))
    assert [o.is_error for o in after] == [False, False]
    rows = await audit_rows_async(len(outcomes) + 2)
    assert len(rows) == len(outcomes) + 2
    assert sum(r.outcome == "rate_limited" for r in rows) == len(outcomes)
    # An audited 429 is one the Core API really sent; calls the gateway refused itself (the
    # account blocked after a 429) carry no upstream status.
    limited = [r.upstream_status for r in rows if r.outcome == "rate_limited"]
    assert set(limited) <= {None, 429} and 429 in limited
    assert limited.count(429) <= sum(e["status"] == 429 for e in entries)


async def _one_call(url: str, token: str):
    async with mcp_session(url, token, "2026-07-28") as client:
        return await call_tool(client, *PLANS)


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_connection_refused_is_clear_and_recovers_when_the_upstream_returns(faults, fault_sandbox):
    token, pid = faults.token(), faults.gateway.proc.pid
    assert not call_tools(faults.url, token, [PLANS])[0].is_error  # a pooled connection exists
    fault_sandbox.stop()
    try:
        write = new_customer_args("refused")
        read, created = call_tools(faults.url, token, [PLANS, ("create_customer", write)])
    finally:
        fault_sandbox.start()
    for outcome in (read, created):
        assert outcome.error == "upstream_unavailable"
        assert outcome.text.startswith("Core API unreachable")
        # Nothing was sent, so nothing may have been applied: the caller may simply retry.
        assert "may_have_been_applied" not in outcome.structured
        assert outcome.seconds < 2.0

    # The same gateway process, no restart: the very next calls (a write first) succeed.
    since = faults.sandbox.last_seq()
    retried, listed = call_tools(faults.url, token, [("create_customer", write), PLANS])
    assert not retried.is_error and not listed.is_error, (retried, listed)
    assert list(write_bodies(faults.sandbox.log(since)).values()) == [1]
    assert_gateway_never_restarted(faults.gateway, pid)
    assert [(r.outcome, r.upstream_status) for r in audit_rows(5)] == [
        ("ok", 200),
        ("error", None),
        ("error", None),
        ("ok", 201),
        ("ok", 200),
    ]
