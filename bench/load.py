"""The load generator: concurrent MCP `tools/call` POSTs, as the real SDK client sends them.

Each request is one self-contained protocol 2026-07-28 `tools/call` with the headers and
`_meta` that `mcp.client.streamable_http` sends (Accept, Content-Type,
MCP-Protocol-Version, Mcp-Method, Mcp-Name). Raw httpx keeps the generator's own cost
low and identical for every target. A call counts as an error unless the answer is HTTP
200 with a JSON-RPC result that is not `isError`. Every run is bounded by a request count
and by time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

PROTOCOL = "2026-07-28"
CLIENT_META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "pelcro-bench", "version": "1.0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def tool_call_body(name: str, arguments: dict[str, Any], request_id: int = 1) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": CLIENT_META},
    }
    return json.dumps(message, separators=(",", ":")).encode()


def tool_call_headers(name: str, token: str | None = None) -> dict[str, str]:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LoadResult:
    """What one load run measured (latencies in seconds)."""

    concurrency: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0  # every request sent, warm-up included (each leaves one audit row)
    error_samples: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        """Latency percentile of the successful calls, in milliseconds."""
        return percentile(sorted(self.latencies), q) * 1000

    def merge(self, other: LoadResult) -> LoadResult:
        """Pool two runs at the same concurrency (throughput = calls over summed time)."""
        return LoadResult(
            concurrency=self.concurrency,
            elapsed=self.elapsed + other.elapsed,
            latencies=self.latencies + other.latencies,
            errors=self.errors + other.errors,
            sent=self.sent + other.sent,
            error_samples=(self.error_samples + other.error_samples)[:5],
        )


def _failure(response: httpx.Response) -> str | None:
    """Why an answer is not a successful tool result, or None if it is one."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        message = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]}"
    if "error" in message:
        return f"JSON-RPC error: {json.dumps(message['error'])[:200]}"
    if message.get("result", {}).get("isError"):
        return f"tool error: {json.dumps(message['result'])[:300]}"
    return None


async def run_load(
    url: str,
    *,
    tool: str,
    arguments: dict[str, Any],
    token: str | None = None,
    concurrency: int,
    duration: float,
    max_calls: int = 1_000_000,
    warmup: float = 0.0,
    timeout: float = 30.0,
) -> LoadResult:
    """`concurrency` clients calling `tool` back to back for `duration` seconds (after
    `warmup` seconds not counted), at most `max_calls` calls in all; one keep-alive
    connection per client."""
    headers = tool_call_headers(tool, token)
    result = LoadResult(concurrency=concurrency)
    # One client (and connection pool) per simulated client: httpx's pool does work
    # proportional to its connections on every request, so one shared pool of 200
    # connections cost the generator ~10 ms of CPU per call and capped every target alike.
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout: at equal timeouts
    # a request sent on a connection idle for ~5 s races the server closing it (ReadError).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout))
            for _ in range(concurrency)
        ]
        loop = asyncio.get_running_loop()
        start = loop.time()
        measure_from = start + warmup
        deadline = measure_from + duration
        issued = 0

        async def client(index: int) -> None:
            nonlocal issued
            http = clients[index]
            request_id = 0
            while loop.time() < deadline and issued < max_calls:
                request_id += 1
                body = tool_call_body(tool, arguments, request_id)
                counted = loop.time() >= measure_from
                if counted:
                    issued += 1
                result.sent += 1
                began = time.perf_counter()
                try:
                    response = await http.post(url, content=body)
                    problem = _failure(response)
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc!r}"
                took = time.perf_counter() - began
                if not counted:
                    continue
                if problem is None:
                    result.latencies.append(took)
                else:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(
                            f"{problem} (client {index}, call {request_id}, after {took:.2f} s)"
                        )

        await asyncio.gather(*(client(i) for i in range(concurrency)))
        # Until the last counted call came back (calls in flight at the deadline included).
        result.elapsed = max(1e-9, loop.time() - measure_from)
    return result
