"""200 concurrent MCP clients against a gateway with 2 uvicorn workers.

    .venv/bin/python bench/concurrency.py [--clients 200] [--duration 60]

Starts the Core API sandbox (rate limit out of reach: the fast upstream) and the full
gateway with `--workers 2` on a scratch database, then runs `--clients` concurrent
clients, each on its own keep-alive connection, sending protocol 2026-07-28 `tools/call`
requests (`get_customer`) back to back for `--duration` seconds. Prints errors (must be
0), p50/p99 latency, throughput, and the resident memory of each worker (at the start,
the peak, and the end, sampled every second); checks that every call left one audit row.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import LoadResult, run_load
from bench.overhead import first_customer_id
from bench.procstat import cpu_seconds, rss_mib
from bench.procstat import workers as worker_pids
from bench.report import machine, table
from bench.stack import DEMO_SITE, Stack


async def load_with_memory(target: dict, workers: list[int], args) -> tuple[LoadResult, dict[int, list[float]]]:
    """The load run, and each worker's RSS (MiB) sampled every second while it runs."""
    samples: dict[int, list[float]] = {pid: [rss_mib(pid)] for pid in workers}
    load = asyncio.create_task(
        run_load(
            concurrency=args.clients, duration=args.duration, warmup=args.warmup, max_calls=args.max_calls, **target
        )
    )
    while not load.done():
        await asyncio.wait([load], timeout=1.0)
        for pid in workers:
            samples[pid].append(rss_mib(pid))
    return load.result(), samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients (connections)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load not counted first")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the gateway")
    parser.add_argument("--max-calls", type=int, default=2_000_000, help="cap on counted calls")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway (repeatable)",
    )
    args = parser.parse_args()
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)

    print(machine())
    with Stack(db=args.db) as stack:
        sandbox = stack.start_sandbox()
        gateway = stack.start_gateway(sandbox, workers=args.workers, **gateway_env)
        token = stack.access_token(gateway)
        arguments = {"site_id": DEMO_SITE, "customer_id": first_customer_id(sandbox.url)}
        target = {"url": gateway.url + "/", "tool": "get_customer", "arguments": arguments, "token": token}
        workers = worker_pids(gateway.proc.pid) if args.workers > 1 else [gateway.proc.pid]
        audit_before = stack.audit_rows()
        cpu_before = cpu_seconds(gateway.proc.pid)
        result, memory = asyncio.run(load_with_memory(target, workers, args))
        cpu = cpu_seconds(gateway.proc.pid) - cpu_before
        audit_rows = stack.audit_rows(audit_before + result.sent) - audit_before

    print()
    print(
        table(
            [
                "clients",
                "workers",
                "seconds",
                "calls",
                "errors",
                "calls/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "gateway CPU ms/call",
            ],
            [
                [
                    args.clients,
                    args.workers,
                    round(result.elapsed, 1),
                    result.calls,
                    result.errors,
                    result.throughput,
                    result.p(50),
                    result.p(99),
                    result.p(100),
                    1000 * cpu / max(1, result.sent),
                ]
            ],
        )
    )
    print()
    print(
        table(
            ["worker", "RSS at start MiB", "RSS peak MiB", "RSS at end MiB"],
            [[f"worker {i + 1} (pid {pid})", rss[0], max(rss), rss[-1]] for i, (pid, rss) in enumerate(memory.items())],
        )
    )
    print()
    for sample in result.error_samples:
        print("error sample:", sample)
    audit_ok = audit_rows == result.sent
    print(
        f"errors: {result.errors} ({'none' if result.errors == 0 else 'MUST BE 0'}); audit rows: {audit_rows} "
        f"for {result.sent} calls ({'none lost' if audit_ok else 'MISMATCH'})"
    )
    return 0 if result.errors == 0 and audit_ok else 1


if __name__ == "__main__":
    sys.exit(main())
