"""The shared rate limiter: how long an acquire takes, and how well it uses the budget.

    .venv/bin/python bench/limiter.py [--calls 5000] [--duration 180] [--processes 2] [--tasks 4]
                                      [--accounts acme,other,globex] [--window 60]

1. Acquire latency: `RedisRateGate.acquire` (the Lua script through redis-py, what every
   Core API request passes) and `request_finished` (the script that closes the request's
   entry), called directly against the real Redis with a limit out of reach: p50/p99 for
   one caller and for 16 concurrent callers in one process.
2. The real limits, per account: the sandbox enforcing each demo account's own
   `api_core_rate_limit` per rolling `--window` (demo/accounts.json: acme 120, other 360,
   globex 240), the gateway reading each limit from the sandbox's `GET /account` (its own
   `read_account`), and for every account `--processes` processes (each its own event
   loop, Redis pool and httpx pool, like web workers and Celery workers) hammering it at
   once through the gateway's Core API client (the limiter gate with that account's
   limit) for `--duration` seconds. The sandbox's request log is the truth: upstream 429s
   (must be 0) and, per account, served requests against its budget,
   `limit x ceil(duration / window)` (the whole budget of every window begun).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.load import percentile
from bench.report import machine, table
from bench.stack import SANDBOX_ADMIN_TOKEN, UNLIMITED, Stack, demo_api_key

# The limiter keys by account id; no database is involved here, any id will do.
ACCOUNT_ID = 1
CONCURRENT_CALLERS = 16


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")
    import django

    django.setup()


# --- 1. Acquire latency ------------------------------------------------------------------


async def time_pairs(gate, calls: int, callers: int) -> tuple[list[float], list[float]]:
    """Latencies (s) of `calls` acquire + request_finished pairs over `callers` concurrent callers."""
    from mcp_bridge.upstream.limiter import request_finished

    acquires: list[float] = []
    finishes: list[float] = []

    async def caller() -> None:
        for _ in range(calls // callers):
            began = time.perf_counter()
            decision = await gate.acquire(ACCOUNT_ID)
            granted = time.perf_counter()
            await request_finished(ACCOUNT_ID, 0.001, decision.call_id)
            acquires.append(granted - began)
            finishes.append(time.perf_counter() - granted)

    await asyncio.gather(*(caller() for _ in range(callers)))
    return acquires, finishes


async def acquire_latency(calls: int) -> list[list[object]]:
    from mcp_bridge.upstream.limiter import LimitConfig, RedisRateGate

    conf = LimitConfig.from_settings()
    gate = RedisRateGate(
        LimitConfig(
            limit=int(UNLIMITED),
            window=conf.window,
            margin=conf.margin,
            wait_budget=conf.wait_budget,
            background_share=conf.background_share,
            hold=conf.hold,
        )
    )
    await time_pairs(gate, 200, 1)  # warm-up: connections, script cache
    rows = []
    for callers in (1, CONCURRENT_CALLERS):
        began = time.perf_counter()
        acquires, finishes = await time_pairs(gate, calls, callers)
        pairs_per_second = len(acquires) / (time.perf_counter() - began)
        for name, latencies in (("acquire (acquire.lua)", acquires), ("request_finished (finish.lua)", finishes)):
            latencies.sort()
            rows.append(
                [
                    name,
                    callers,
                    len(latencies),
                    percentile(latencies, 50) * 1000,
                    percentile(latencies, 99) * 1000,
                    pairs_per_second,
                ]
            )
    return rows


# --- 2. The real limit across processes ----------------------------------------------------


def hammer(env: dict[str, str], account: dict, start_at: float, duration: float, tasks: int) -> dict[str, int]:
    """One process: `tasks` concurrent callers of the Core API client for `account` until the deadline."""
    setup_django(env)
    return asyncio.run(_hammer(account, start_at, duration, tasks))


async def _hammer(account: dict, start_at: float, duration: float, tasks: int) -> dict[str, int]:
    from mcp_bridge.core.client import get_client
    from mcp_bridge.upstream.errors import RateLimited, UpstreamError

    counts = {"ok": 0, "gateway_refusals": 0, "upstream_429": 0, "errors": 0}
    api_key = demo_api_key(account["slug"])
    await asyncio.sleep(max(0.0, start_at - time.time()))
    # One deadline for every process (a process that started late stops with the others).
    deadline = time.monotonic() + max(0.0, start_at + duration - time.time())

    async def caller() -> None:
        while time.monotonic() < deadline:
            try:
                await get_client().request(
                    "GET",
                    "/customers",
                    account_id=account["id"],
                    api_key=api_key,
                    site_id=account["site_id"],
                    params={"limit": 1},
                    rate_limit=account["limit"],
                )
                counts["ok"] += 1
            except RateLimited as exc:
                if exc.source == "upstream":
                    counts["upstream_429"] += 1
                else:
                    counts["gateway_refusals"] += 1
                # Like an assistant told "retry in N s"; never past the deadline.
                await asyncio.sleep(max(0.0, min(exc.retry_after, deadline - time.monotonic())))
            except UpstreamError:
                counts["errors"] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(caller() for _ in range(tasks)))
    return counts


def sandbox_log(sandbox_url: str, account: str) -> list[dict]:
    response = httpx.get(
        sandbox_url + "/_sandbox/log",
        params={"account": account},
        headers={"X-Sandbox-Admin": SANDBOX_ADMIN_TOKEN},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["data"]


async def limits_from_get_account(base_url: str, slugs: list[str]) -> list[dict]:
    """Each account's limit and first site as the gateway reads them (`GET /account`). The
    limiter keys by account id: Pelcro's own ids here (no database), apart from part 1's."""
    from mcp_bridge.core.account_refresh import read_account
    from mcp_bridge.core.client import CoreAPIClient
    from mcp_bridge.upstream.gate import OpenGate

    client = CoreAPIClient(base_url, gate=OpenGate())
    try:
        accounts = []
        for slug in slugs:
            pelcro = await read_account(client, account_id=0, api_key=demo_api_key(slug))
            assert pelcro.id != ACCOUNT_ID
            accounts.append(
                {"slug": slug, "id": pelcro.id, "limit": pelcro.api_core_rate_limit, "site_id": pelcro.sites[0].id}
            )
        return accounts
    finally:
        await client.aclose()


def real_limit(stack: Stack, args) -> tuple[list[list[object]], bool]:
    # No override: the sandbox enforces every account's own api_core_rate_limit.
    sandbox = stack.start_sandbox(SANDBOX_RATE_LIMIT="", SANDBOX_RATE_WINDOW=str(args.window))
    env = {
        **stack.base_env(),
        "CORE_API_BASE_URL": sandbox.url + "/api/v1/core",
        "RATE_WINDOW_SECONDS": str(args.window),
    }
    accounts = asyncio.run(limits_from_get_account(env["CORE_API_BASE_URL"], args.accounts.split(",")))
    start_at = time.time() + 20.0  # every process set up (spawned, Django loaded) before the first request
    jobs = [(account, i) for account in accounts for i in range(args.processes)]
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        futures = [
            (account, pool.submit(hammer, env, account, start_at, args.duration, args.tasks)) for account, _ in jobs
        ]
        results = [(account, f.result(timeout=args.duration + 120)) for account, f in futures]
    from mcp_bridge.upstream.limiter import LimitConfig

    config = LimitConfig.from_settings()
    windows = math.ceil(args.duration / args.window)
    rows, ok = [], True
    for account in accounts:
        # The hammered requests (the one GET /account above is not part of the run).
        log = [e for e in sandbox_log(sandbox.url, account["slug"]) if e["path"].endswith("/customers")]
        served = sum(1 for e in log if e["status"] != 429)
        upstream_429 = sum(1 for e in log if e["status"] == 429)
        mine = [r for a, r in results if a is account]
        # The windows the requests really spanned (a busy machine may start a process late).
        times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in log]
        spanned = max(windows, math.ceil((max(times) - min(times)) / args.window)) if times else windows
        budget = account["limit"] * spanned
        cap = config.for_limit(account["limit"]).cap * spanned
        rows.append(
            [
                account["slug"],
                f"{account['limit']} / {args.window:g} s",
                args.processes,
                args.processes * args.tasks,
                round(args.duration),
                served,
                upstream_429,
                sum(r["gateway_refusals"] for r in mine),
                sum(r["errors"] for r in mine),
                f"{100 * served / budget:.1f}%",
                f"{100 * served / cap:.1f}%",
            ]
        )
        ok = ok and upstream_429 == 0 and served <= budget
    return rows, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="acquire calls timed per row")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of hammering the real limit")
    parser.add_argument("--processes", type=int, default=2, help="processes per account")
    parser.add_argument("--tasks", type=int, default=4, help="concurrent callers per process")
    parser.add_argument(
        "--accounts",
        default="acme,other,globex",
        help="demo accounts hammered at once, each at its own GET /account limit",
    )
    parser.add_argument("--window", type=float, default=60.0, help="the rolling window, seconds")
    args = parser.parse_args()

    print(machine())
    with Stack(db=None) as stack:
        # The gateway's settings for this process: this run's Redis prefix and window.
        setup_django({**stack.base_env(), "RATE_WINDOW_SECONDS": str(args.window)})
        latency_rows = asyncio.run(acquire_latency(args.calls))
        limit_rows, ok = real_limit(stack, args)

    print()
    print(table(["call", "concurrent callers", "calls", "p50 ms", "p99 ms", "pairs/s"], latency_rows))
    print()
    print(
        table(
            [
                "account",
                "limit (GET /account)",
                "processes",
                "callers",
                "seconds",
                "served upstream",
                "upstream 429s",
                "gateway refusals",
                "errors",
                "budget used",
                "of the limiter's cap",
            ],
            limit_rows,
        )
    )
    print()
    print(f"upstream 429s must be 0 and served requests within each limit: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
