"""Where the gateway spends its time under load: py-spy samples of a loaded gateway.

    .venv/bin/python bench/hotspots.py [--duration 20] [--concurrency 8] [--top 30]

Starts the same stack as bench/overhead.py (sandbox, one gateway worker), loads the
gateway with `get_customer` calls and samples the gateway process with py-spy (by default
the thread holding the GIL, i.e. where its CPU goes; `--wall` for every thread) (`pip install py-spy==0.4.3`; it needs ptrace rights over its child, which root
or a same-user child has). Prints the functions that hold the most samples, inclusive
("total") and exclusive ("self"), how the samples split between the parts of a tool call
(token check, site check, audit row, limiter, ...), and writes the collapsed stacks to
test-output/bench-hotspots.txt (load them into speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import run_load
from bench.overhead import first_customer_id
from bench.report import machine, table
from bench.stack import DEMO_SITE, Stack
from devtools.servers import OUTPUT_DIR

# The gateway's own code: the inclusive table lists only these frames (the rest are the
# server's and libraries' call chains, which the exclusive table shows where they cost).
PROJECT_MODULES = ("mcp_bridge", "accounts", "pelcro_gateway", "ops")


# Where a tool call's CPU goes: a sample belongs to the first part whose marker is in its
# stack (the DB work runs in asgiref's thread, so its stacks hold no request frames; some
# library frames reached from callbacks have lost their caller, hence the library markers).
PARTS = [
    ("token check on a cache miss (accounts.tokens.credentials_for_token)", "credentials_for_token ("),
    ("token check cache: auth epoch read (Redis GET)", "(mcp_bridge/edge/credential_cache.py"),
    ("audit row (mcp_bridge.audit)", "(mcp_bridge/audit/"),
    ("limiter: acquire + finish Lua scripts (Redis)", "(mcp_bridge/upstream/limiter.py"),
    # redis-py frames reached from a callback have lost their caller: the gateway's client
    # module marks them.
    (
        "Redis client (mcp_bridge.upstream.redis_clients, redis-py: limiter and epoch)",
        "(mcp_bridge/upstream/redis_clients.py",
    ),
    ("Redis client (mcp_bridge.upstream.redis_clients, redis-py: limiter and epoch)", "(redis/"),
    ("other DB work (connection checks, psycopg, ORM)", "close_old_connections ("),
    ("other DB work (connection checks, psycopg, ORM)", "(psycopg"),
    ("other DB work (connection checks, psycopg, ORM)", "(django/db/"),
    ("thread hops to the DB thread (asgiref)", "(asgiref/"),
    ("thread hops to the DB thread (asgiref)", "(concurrent/futures/"),
    ("Core API request (httpx)", "CoreAPIClient"),
    ("Core API request (httpx)", "(mcp_bridge/upstream/http.py"),
    ("Core API request (httpx)", "(httpcore/"),
    ("Core API request (httpx)", "(httpx/"),
    ("tool result (pydantic, JSON)", "(mcp_bridge/runtime/results.py"),
    ("tool result (pydantic, JSON)", "(mcp_bridge/core/results.py"),
    ("access log line", "(logging/"),
    ("MCP SDK, gates, HTTP server, event loop", ""),
]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy==0.4.3")
    return found


def summarize(collapsed: Path, top: int) -> tuple[list[list[object]], list[list[object]], int]:
    """From py-spy's collapsed stacks: the gateway's own `top` functions by inclusive share,
    all functions by exclusive share (rows of function, total %, self %), the sample count."""
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        # A frame is "function (file:line)"; a function counts once per stack, whatever the line.
        names = [frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame for frame in stack.split(";")]
        for name in set(names):
            inclusive[name] += count
        exclusive[names[-1]] += count

    def rows(names: list[str]) -> list[list[object]]:
        return [[name[:110], 100 * inclusive[name] / samples, 100 * exclusive[name] / samples] for name in names[:top]]

    ours = [name for name, _ in inclusive.most_common() if any(f"({m}/" in name for m in PROJECT_MODULES)]
    return rows(ours), rows([name for name, _ in exclusive.most_common()]), samples


def parts(collapsed: Path) -> list[list[object]]:
    """The share of samples of each of PARTS (rows of part, %)."""
    shares: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack:
            shares[next(name for name, marker in PARTS if marker in stack)] += int(count_text)
    total = sum(shares.values()) or 1
    return [[name, 100 * count / total] for name, count in shares.most_common()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load sampled")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="sample every thread, waiting included (default: only the thread holding the GIL, "
        "i.e. where the CPU goes)",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)
    spy = py_spy()

    print(machine())
    OUTPUT_DIR.mkdir(exist_ok=True)
    collapsed = OUTPUT_DIR / "bench-hotspots.txt"
    with Stack(db=args.db) as stack:
        sandbox = stack.start_sandbox()
        gateway = stack.start_gateway(sandbox, **gateway_env)
        token = stack.access_token(gateway)
        arguments = {"site_id": DEMO_SITE, "customer_id": first_customer_id(sandbox.url)}
        target = {"url": gateway.url + "/", "tool": "get_customer", "arguments": arguments, "token": token}
        asyncio.run(run_load(concurrency=args.concurrency, duration=2.0, **target))  # warm-up
        spy_argv = [
            spy,
            "record",
            "--pid",
            str(gateway.proc.pid),
            "--rate",
            str(args.rate),
            "--duration",
            str(int(args.duration)),
            "--nonblocking",
            *([] if args.wall else ["--gil"]),
        ]
        recorder = subprocess.Popen(
            [*spy_argv, "--format", "raw", "--output", str(collapsed)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        result = asyncio.run(run_load(concurrency=args.concurrency, duration=args.duration + 1, **target))
        _, spy_errors = recorder.communicate(timeout=args.duration + 60)
        if recorder.returncode != 0:
            sys.exit(f"py-spy failed: {spy_errors.decode(errors='replace')[-2000:]}")
    by_total, by_self, samples = summarize(collapsed, args.top)
    print(
        f"\nload: {result.throughput:.1f} calls/s, p50 {result.p(50):.2f} ms, p99 {result.p(99):.2f} ms, "
        f"errors {result.errors}; {samples} samples of "
        + ("every gateway thread" if args.wall else "the gateway thread holding the GIL")
    )
    print(table(["part of a tool call", "% of samples"], parts(collapsed)))
    print()
    print(table(["function (file)", "total %", "self %"], by_total))
    print()
    print(table(["function (file)", "total %", "self %"], by_self))
    print(f"\ncollapsed stacks: {collapsed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
