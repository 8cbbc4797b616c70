"""Prometheus metrics of this process (scraped at `/metrics`, see `ops/prometheus.py`).

Counters live in process memory: each web process and worker counts its own. With
several processes per host set `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess
mode) and `/metrics` aggregates them; the live per-account limiter state that `/metrics`
also exports comes from Redis and is shared by all processes anyway.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

LIMITER_DECISIONS = Counter(
    "pelcro_ratelimit_decisions_total",
    "Rate-limiter decisions before Core API requests.",
    ["decision", "kind"],  # decision: granted, wait, granted_after_wait, rejected, unavailable
)
UPSTREAM_429 = Counter(
    "pelcro_upstream_429_total", "Core API answers 429 despite the limiter (each blocks the account)."
)
UPSTREAM_LATENCY = Histogram(
    "pelcro_upstream_request_duration_seconds",
    "Core API request latency, by method and status class.",
    ["method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TOOL_CALLS = Counter("pelcro_tool_calls_total", "MCP tool calls, by tool and outcome.", ["tool", "outcome"])
TOOL_CALL_DURATION = Histogram(
    "pelcro_tool_call_duration_seconds",
    "MCP tool call duration (limiter wait included), by tool.",
    ["tool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


# `labels()` looks its child up under a lock on every call; each tool call records four
# metrics, so the children are remembered here (label values come from small fixed sets:
# tool names are the catalog's or "unknown").
@cache
def _child(metric, *values: str):
    return metric.labels(*values)


def record_tool_call(tool: str, outcome: str, seconds: float) -> None:
    """Count one MCP tool call (outcome: ok, error, denied, rate_limited) and its duration."""
    _child(TOOL_CALLS, tool, outcome).inc()
    _child(TOOL_CALL_DURATION, tool).observe(seconds)


def limiter_decision(decision: str, kind: str) -> None:
    """Count one limiter decision (kind: interactive or background)."""
    _child(LIMITER_DECISIONS, decision, kind).inc()


def observe_upstream(method: str, status: int, seconds: float) -> None:
    """Record one Core API attempt's latency (status 0: no answer, e.g. a timeout)."""
    _child(UPSTREAM_LATENCY, method, f"{status // 100}xx" if status else "none").observe(seconds)
