"""The live state the ops dashboard, its JSON API and /metrics show.

Limiter numbers come from Redis (`mcp_bridge.upstream.usage.peek_many`, which writes nothing),
so they are the same whichever web process or worker caused them; connections, tool
calls and exports come from the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count

from accounts.models import Account, Connection, Site
from mcp_bridge.models import ExportJob, ToolCall
from mcp_bridge.upstream.limiter import LimitConfig
from mcp_bridge.upstream.usage import LimiterState, MinuteUsage, latency_samples, peek_many
from ops.rollups import minute_start, percentile
from ops.serializers import AccountDetailSerializer, OverviewSerializer

HOUR_MINUTES = 60
LATEST_TOOL_CALLS = 15
LATEST_EXPORTS = 5


@dataclass(frozen=True)
class AccountLive:
    """One account with its limiter state (`ops.serializers.AccountRowSerializer`)."""

    account: Account
    state: LimiterState
    connections: int

    @property
    def hour(self) -> MinuteUsage:
        return self.state.totals(HOUR_MINUTES)

    @property
    def blocked_for(self) -> float:
        return round(self.state.blocked_for, 1)

    @property
    def next_free_in(self) -> float:
        return round(self.state.next_free_in, 1)


@dataclass(frozen=True)
class Minute:
    start: datetime
    usage: MinuteUsage


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def overview() -> dict:
    """Every account with its live limiter state (shape: `OverviewSerializer`). Raises
    RateLimiterUnavailable if Redis is down."""
    config = LimitConfig.from_settings()
    accounts = list(Account.objects.order_by("name"))
    states = peek_many([a.id for a in accounts], config, {a.id: a.api_core_rate_limit for a in accounts})
    connections = dict(
        Connection.objects.filter(revoked_at__isnull=True)
        .values("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    now = next(iter(states.values())).now if states else None
    return OverviewSerializer(
        {
            "generated_at": _at(now) if now else None,
            "config": config,
            "accounts": [AccountLive(a, states[a.id], connections.get(a.id, 0)) for a in accounts],
        }
    ).data


def subscriber_connections_by_site() -> list[dict]:
    """Active subscriber connections (the Open server) per site, for the sites that offer
    subscriber sign-in or still have such connections: `[{"site_id", "name", "account",
    "subscriber_access_enabled", "connections"}]` ordered by account, then site. From the
    database (no Redis), so it shows even while the limiter is down."""
    counts = dict(
        Connection.objects.filter(revoked_at__isnull=True, user__subscriber__isnull=False)
        .values("user__subscriber__site_id")
        .annotate(n=Count("id"))
        .values_list("user__subscriber__site_id", "n")
    )
    sites = Site.objects.select_related("account").order_by("account__name", "site_id")
    return [
        {
            "site_id": site.site_id,
            "name": site.name,
            "account": site.account.name,
            "subscriber_access_enabled": site.subscriber_access_enabled,
            "connections": counts.get(site.pk, 0),
        }
        for site in sites
        if site.subscriber_access_enabled or counts.get(site.pk)
    ]


def account_detail(account: Account) -> dict:
    """One account: its live row, requests per minute over the last hour, latency, the
    latest tool calls and exports (shape: `AccountDetailSerializer`). Raises
    RateLimiterUnavailable if Redis is down."""
    config = LimitConfig.from_settings().for_limit(account.api_core_rate_limit)  # this account's own limit
    state = peek_many([account.id], config)[account.id]
    connections = Connection.objects.filter(account=account, revoked_at__isnull=True).count()
    minutes = state.last_minutes(HOUR_MINUTES)
    samples = latency_samples(account.id)
    recent = [ms for m in range(minutes[-1].minute - 4, minutes[-1].minute + 1) for ms in samples.get(m, [])]
    return AccountDetailSerializer(
        {
            "generated_at": _at(state.now),
            "config": config,
            "row": AccountLive(account, state, connections),
            "latency": {"p50_ms": percentile(recent, 50), "p95_ms": percentile(recent, 95), "samples": len(recent)},
            "per_minute": [Minute(minute_start(m.minute), m) for m in minutes],
            "tool_calls": ToolCall.objects.filter(account=account).order_by("-created_at", "-id")[:LATEST_TOOL_CALLS],
            "exports": ExportJob.objects.filter(account=account).order_by("-created_at")[:LATEST_EXPORTS],
        }
    ).data
