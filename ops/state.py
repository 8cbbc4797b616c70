"""The live state the ops dashboard, its JSON API and /metrics show.

Limiter numbers come from Redis (`mcp_bridge.ratelimit.peek_many`, which writes nothing),
so they are the same whichever web process or worker caused them; connections, tool
calls and exports come from the database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Count

from accounts.models import Account, Connection
from mcp_bridge.models import ExportJob, ToolCall
from mcp_bridge.ratelimit import LimitConfig, LimiterState, latency_samples, peek_many
from ops.rollups import minute_start, percentile

HOUR_MINUTES = 60
LATEST_TOOL_CALLS = 15
LATEST_EXPORTS = 5


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def limit_info(config: LimitConfig) -> dict:
    return {
        "limit": config.limit,
        "window_seconds": config.window,
        "safety_margin": config.margin,
        "cap": config.cap,
        "background_cap": config.background_cap,
        "wait_budget_seconds": config.wait_budget,
        "cap_per_minute": round(config.per_minute, 2),
    }


def _row(account: Account, state: LimiterState, connections: int) -> dict:
    hour = state.totals(HOUR_MINUTES)
    return {
        "id": account.id,
        "slug": account.slug,
        "name": account.name,
        "remaining": state.remaining,
        "in_window": state.in_window,
        "background_in_window": state.background_in_window,
        "waiting": state.waiting,
        "blocked_for": round(state.blocked_for, 1),
        "next_free_in": round(state.next_free_in, 1),
        "calls_last_hour": hour.calls,
        "waits_last_hour": hour.waits,
        "rejections_last_hour": hour.rejections,
        "upstream_429s_last_hour": hour.upstream_429s,
        "active_connections": connections,
    }


def overview() -> dict:
    """Every account with its live limiter state. Raises RateLimiterUnavailable if Redis is down."""
    config = LimitConfig.from_settings()
    accounts = list(Account.objects.order_by("name"))
    states = peek_many([a.id for a in accounts], config)
    connections = dict(
        Connection.objects.filter(revoked_at__isnull=True)
        .values("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    now = next(iter(states.values())).now if states else None
    return {
        "generated_at": _iso(now) if now else None,
        "limit": limit_info(config),
        "accounts": [_row(a, states[a.id], connections.get(a.id, 0)) for a in accounts],
    }


def account_detail(account: Account) -> dict:
    """One account: its live row, requests per minute over the last hour, latency, the
    latest tool calls and exports. Raises RateLimiterUnavailable if Redis is down."""
    config = LimitConfig.from_settings()
    state = peek_many([account.id], config)[account.id]
    connections = Connection.objects.filter(account=account, revoked_at__isnull=True).count()
    minutes = state.last_minutes(HOUR_MINUTES)
    samples = latency_samples(account.id)
    recent = [ms for m in range(minutes[-1].minute - 4, minutes[-1].minute + 1) for ms in samples.get(m, [])]
    calls = ToolCall.objects.filter(account=account).order_by("-created_at", "-id")[:LATEST_TOOL_CALLS]
    jobs = ExportJob.objects.filter(account=account).order_by("-created_at")[:LATEST_EXPORTS]
    return {
        "generated_at": _iso(state.now),
        "limit": limit_info(config),
        "account": _row(account, state, connections),
        "latency_last_5_min": {"p50_ms": percentile(recent, 50), "p95_ms": percentile(recent, 95),
                               "samples": len(recent)},
        "per_minute": [
            {
                "minute": minute_start(m.minute).isoformat().replace("+00:00", "Z"),
                "calls": m.calls,
                "background_calls": m.background_calls,
                "waits": m.waits,
                "rejections": m.rejections,
                "upstream_429s": m.upstream_429s,
            }
            for m in minutes
        ],
        "tool_calls": [
            {
                "at": c.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "tool": c.tool,
                "outcome": c.outcome,
                "user": c.username,
                "client": c.client_name or c.client_id,
                "site_id": c.site_id,
                "upstream_status": c.upstream_status,
                "latency_ms": c.latency_ms,
            }
            for c in calls
        ],
        "exports": [
            {
                "job_id": str(j.id),
                "kind": j.kind,
                "site_id": j.site_id,
                "status": j.status,
                "rows_done": j.rows_done,
                "rows_total": j.rows_total,
                "created_at": j.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
            for j in jobs
        ],
    }
