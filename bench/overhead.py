"""What the gateway adds to a tool call, against a bare `MCPServer` doing the same request.

    .venv/bin/python bench/overhead.py [--duration 15] [--concurrency 1,8,32] [--rounds 2]

Starts, on free 127.0.0.1 ports: the Core API sandbox (rate limit out of reach), the
full gateway (one uvicorn worker: token check, site check, the Redis limiter with a limit
out of reach so its Lua script runs but never refuses, the Core API call, the audit row)
and bench/bare_server.py (one worker, the same SDK and the same single upstream request).
Both get the same `get_customer` calls from the same load generator, target after target
in alternating order, at each concurrency. Prints throughput, p50/p99 and the server
process's CPU per call for each target and the ratios, checks the floors and that every
gateway call left exactly one audit row. The floors: gateway throughput >= 0.6x the bare
server's at every concurrency, and p50 at most 2 ms more with one client. (With more
clients than the server has CPU for, p50 is queueing: about clients / throughput, so its
difference follows from the throughput ratio; it is reported, not judged.)
`--servers core,open` (the default) also measures the Open server: `open` is the same
gateway's `/open` with the `get_my_profile` tool (one Open API `POST /customer` as a demo
subscriber, through the subscriber's stored Pelcro JWT), against `bare-open`, the bare
server's `get_my_profile` making that same request; its floors are the Core ones.
`--gateway-env DB_POOL_SIZE=4` measures the gateway with its connection pool.
`--variant NAME:ENV=VALUE[,ENV=VALUE...]` (repeatable) adds another gateway target with that
extra environment, measured in the same rounds (alternating with the others) and compared
with the same bare server, e.g. the Redis client libraries of BENCHMARKS.md section 5.
The floors are checked for `gateway` (the default configuration) only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.load import LoadResult, run_load
from bench.procstat import cpu_seconds
from bench.report import machine, table
from bench.stack import DEMO_SITE, Stack, demo_api_key
from devtools.servers import ServerProcess

MIN_THROUGHPUT_RATIO = 0.6
MAX_P50_DELTA_MS = 2.0


def first_customer_id(sandbox_url: str) -> int:
    """A customer of the demo site, read straight from the sandbox."""
    response = httpx.get(
        sandbox_url + "/api/v1/core/customers",
        params={"site_id": DEMO_SITE, "limit": 1},
        headers={"Authorization": f"Bearer {demo_api_key()}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["data"][0]["id"]


async def measure(
    targets: dict[str, dict], servers: dict[str, ServerProcess], concurrency: int, args
) -> dict[str, tuple[LoadResult, float]]:
    """Each target at `concurrency`, `args.rounds` times in alternating order, pooled;
    with the CPU seconds its server process burnt per call."""
    pooled: dict[str, LoadResult] = {}
    cpu: dict[str, float] = {}
    names = list(targets)
    for round_no in range(args.rounds):
        for name in names if round_no % 2 == 0 else reversed(names):
            cpu_before = cpu_seconds(servers[name].proc.pid)
            result = await run_load(
                concurrency=concurrency,
                duration=args.duration,
                warmup=args.warmup,
                max_calls=args.max_calls,
                **targets[name],
            )
            cpu[name] = cpu.get(name, 0.0) + cpu_seconds(servers[name].proc.pid) - cpu_before
            pooled[name] = pooled[name].merge(result) if name in pooled else result
            print(
                f"  c={concurrency:<3} round {round_no + 1} {name:<8} {result.throughput:8.1f}/s "
                f"p50 {result.p(50):6.2f} ms  p99 {result.p(99):7.2f} ms  errors {result.errors}",
                file=sys.stderr,
                flush=True,
            )
    return {name: (pooled[name], cpu[name] / max(1, pooled[name].sent)) for name in names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per target and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of calls not counted before each run")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=2, help="runs per target and concurrency (alternating)")
    parser.add_argument("--max-calls", type=int, default=200_000, help="cap on counted calls per run")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--servers",
        default="core,open",
        help="which servers' calls to measure: core (get_customer), open (get_my_profile)",
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway (repeatable)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:ENV=VALUE[,ENV=VALUE]",
        help="another gateway target with extra environment (repeatable)",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    kinds = set(args.servers.split(","))
    if not kinds or kinds - {"core", "open"}:
        parser.error("--servers: a comma-separated subset of core,open")
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)
    variants: dict[str, dict[str, str]] = {}
    for spec in args.variant:
        name, _, assignments = spec.partition(":")
        if not name or name in ("bare", "gateway") or name in variants or "=" not in assignments:
            parser.error(f"--variant {spec!r}: NAME:ENV=VALUE[,ENV=VALUE], NAME not bare/gateway/another variant's")
        variants[name] = {**gateway_env, **dict(item.split("=", 1) for item in assignments.split(","))}

    print(machine())
    with Stack(db=args.db) as stack:
        sandbox = stack.start_sandbox()
        gateways = {"gateway": stack.start_gateway(sandbox, **gateway_env)}
        for name, env in variants.items():
            gateways[name] = stack.start_gateway(sandbox, **env)
        subscriber = stack.demo_subscriber()
        bare = stack.start_bare(sandbox, open_jwt=stack.subscriber_jwt(sandbox, subscriber) if "open" in kinds else "")
        arguments = {"site_id": DEMO_SITE, "customer_id": first_customer_id(sandbox.url)}
        targets: dict[str, dict] = {}
        servers: dict[str, ServerProcess] = {}
        pairs: list[tuple[str, str]] = []  # (target, its baseline)
        if "core" in kinds:
            targets["bare"] = {"url": bare.url + "/", "tool": "get_customer", "arguments": arguments}
            servers["bare"] = bare
            for name, server in gateways.items():
                targets[name] = {
                    "url": server.url + "/",
                    "tool": "get_customer",
                    "arguments": arguments,
                    "token": stack.access_token(server),
                }
                servers[name] = server
                pairs.append((name, "bare"))
        if "open" in kinds:
            gateway = gateways["gateway"]
            targets["bare-open"] = {"url": bare.url + "/", "tool": "get_my_profile", "arguments": {}}
            targets["open"] = {
                "url": gateway.url + "/open",
                "tool": "get_my_profile",
                "arguments": {},
                "token": stack.open_access_token(gateway, subscriber),
            }
            servers.update({"bare-open": bare, "open": gateway})
            pairs.append(("open", "bare-open"))
        audit_before = stack.audit_rows()
        results = {c: asyncio.run(measure(targets, servers, c, args)) for c in levels}
        judged = [name for name, _ in pairs]
        sent_to_gateway = sum(by_target[name][0].sent for by_target in results.values() for name in judged)
        audit_rows = stack.audit_rows(audit_before + sent_to_gateway) - audit_before
        limiter_grants = stack.limiter_grants()

    rows, ok = [], True
    for c, by_target in results.items():
        for name, (r, cpu) in by_target.items():
            rows.append([name, c, r.calls, r.errors, r.throughput, r.p(50), r.p(99), cpu * 1000])
        for name, baseline in pairs:
            bare_r, bare_cpu = by_target[baseline]
            gw, gw_cpu = by_target[name]
            ratio = gw.throughput / bare_r.throughput if bare_r.throughput else 0.0
            delta = gw.p(50) - bare_r.p(50)
            if name in ("gateway", "open"):
                passed = ratio >= MIN_THROUGHPUT_RATIO and gw.errors == bare_r.errors == 0
                if c == 1:
                    passed &= delta <= MAX_P50_DELTA_MS
                ok &= passed
            rows.append(
                [
                    f"**{name} vs {baseline}**",
                    c,
                    "",
                    "",
                    f"{ratio:.2f}x",
                    f"{delta:+.2f}",
                    f"{gw.p(99) - bare_r.p(99):+.2f}",
                    f"{(gw_cpu - bare_cpu) * 1000:+.2f}",
                ]
            )
            for sample in gw.error_samples:
                print(f"error sample ({name}):", sample, file=sys.stderr)
        for baseline in {b for _, b in pairs}:
            for sample in by_target[baseline][0].error_samples:
                print(f"error sample ({baseline}):", sample, file=sys.stderr)
    print()
    print(table(["target", "clients", "calls", "errors", "calls/s", "p50 ms", "p99 ms", "server CPU ms/call"], rows))
    print()
    audit_ok = audit_rows == sent_to_gateway
    ok &= audit_ok
    print(
        f"floors: gateway (and open) >= {MIN_THROUGHPUT_RATIO}x its bare baseline's calls/s at every concurrency, "
        "p50 <= the baseline's + "
        f"{MAX_P50_DELTA_MS} ms with one client, no errors: {'met' if ok else 'NOT met'}"
    )
    print(
        f"audit rows written: {audit_rows} for {sent_to_gateway} gateway calls ({'none lost' if audit_ok else 'MISMATCH'}); "
        f"limiter grants (Lua acquire) counted in Redis: {limiter_grants}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
