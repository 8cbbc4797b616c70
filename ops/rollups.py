"""Per-minute usage roll-ups: Redis counters and latency samples → `UsageMinute` rows.

Beat runs this every minute. It writes every complete minute (by Redis time) newer than
the account's last rolled-up minute, plus a couple before it, so a late run or a beat
outage of up to about two hours (what Redis keeps) loses nothing; rewriting a minute is
idempotent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from accounts.models import Account
from mcp_bridge.upstream.limiter import LimitConfig
from mcp_bridge.upstream.usage import MinuteUsage, latency_samples, peek_many, redis_time
from ops.models import UsageMinute

REWRITE_MINUTES = 2


def percentile(samples: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `samples`, or None if there are none."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def minute_start(epoch_minute: int) -> datetime:
    return datetime.fromtimestamp(epoch_minute * 60, tz=UTC)


def rollup_usage(current_minute: int | None = None) -> int:
    """Write the complete minutes Redis holds for every account; returns rows written.

    `current_minute` (epoch minute, default: now by Redis's clock) is the first minute
    treated as incomplete.
    """
    current = int(redis_time() // 60) if current_minute is None else current_minute
    account_ids = list(Account.objects.values_list("id", flat=True))
    states = peek_many(account_ids, LimitConfig.from_settings())
    last_done = dict(
        UsageMinute.objects.values("account_id").annotate(last=Max("minute")).values_list("account_id", "last")
    )
    written = 0
    for account_id in account_ids:
        latencies = latency_samples(account_id)
        usage = states[account_id].minutes
        since = last_done.get(account_id)
        first = int(since.timestamp() // 60) - REWRITE_MINUTES if since else 0
        for minute in sorted(set(usage) | set(latencies)):
            if not first <= minute < current:
                continue
            row = usage.get(minute, MinuteUsage(minute))
            samples = latencies.get(minute, [])
            UsageMinute.objects.update_or_create(
                account_id=account_id,
                minute=minute_start(minute),
                defaults={
                    "calls": row.calls,
                    "background_calls": row.background_calls,
                    "waits": row.waits,
                    "rejections": row.rejections,
                    "upstream_429s": row.upstream_429s,
                    "latency_p50_ms": percentile(samples, 50),
                    "latency_p95_ms": percentile(samples, 95),
                },
            )
            written += 1
    retention = timedelta(days=settings.PELCRO_GATEWAY["USAGE_RETENTION_DAYS"])
    UsageMinute.objects.filter(minute__lt=timezone.now() - retention).delete()
    return written
