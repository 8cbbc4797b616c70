"""`/metrics` for Prometheus: this process's counters plus the shared limiter state.

Counters and histograms (`mcp_bridge.metrics`) are per process; with
`PROMETHEUS_MULTIPROC_DIR` set, every process's files are aggregated. The per-account
limiter gauges are read from Redis at scrape time, so they are right whichever process
is scraped. With `METRICS_TOKEN` set, a scrape must send `Authorization: Bearer <token>`
(scheme in any case, RFC 7235; the bare token is refused);
it is required outside dev (system check E016). Without it (dev only) the per-account
gauges are left out: anyone could read every account's slug and live usage.
"""

import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from accounts.models import Account
from mcp_bridge.upstream.errors import RateLimiterUnavailable
from mcp_bridge.upstream.limiter import LimitConfig
from mcp_bridge.upstream.redis_clients import REDIS_DOWN_ERRORS
from mcp_bridge.upstream.usage import peek_many, redis_time


class LimiterStateCollector:
    """Per-account gauges from Redis, collected at scrape time (`per_account=False`: only
    whether Redis answered)."""

    def __init__(self, *, per_account: bool):
        self.per_account = per_account

    def collect(self):
        up = GaugeMetricFamily("pelcro_ratelimit_redis_up", "1 if the limiter's Redis answered this scrape.")
        families = {
            "in_window": GaugeMetricFamily(
                "pelcro_ratelimit_in_window", "Requests started in the current rolling window.", labels=["account"]
            ),
            "remaining": GaugeMetricFamily(
                "pelcro_ratelimit_remaining", "Requests that may start now.", labels=["account"]
            ),
            "waiting": GaugeMetricFamily("pelcro_ratelimit_waiting", "Callers waiting for a slot.", labels=["account"]),
            "cap": GaugeMetricFamily(
                "pelcro_ratelimit_cap",
                "Requests the gateway grants per window: the account's own limit "
                "(GET /account, or the default) minus the safety margin.",
                labels=["account"],
            ),
            "blocked_for": GaugeMetricFamily(
                "pelcro_ratelimit_blocked_seconds", "Seconds left of an upstream-429 block.", labels=["account"]
            ),
        }
        rows = list(Account.objects.values_list("id", "slug", "api_core_rate_limit")) if self.per_account else []
        accounts = {account_id: slug for account_id, slug, _ in rows}
        limits = {account_id: limit for account_id, _, limit in rows}
        try:
            if self.per_account:
                states = peek_many(list(accounts), LimitConfig.from_settings(), limits)
            else:
                redis_time()  # is Redis answering at all
                states = {}
        except (RateLimiterUnavailable, *REDIS_DOWN_ERRORS):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        if not self.per_account:
            return
        for account_id, live in states.items():
            slug = accounts[account_id]
            for name, family in families.items():
                value = live.remaining if name == "remaining" else getattr(live, name)
                family.add_metric([slug], value)
        yield from families.values()


_limiter_registries = {}
for _per_account in (True, False):
    _limiter_registries[_per_account] = CollectorRegistry(auto_describe=False)
    _limiter_registries[_per_account].register(LimiterStateCollector(per_account=_per_account))


def _process_registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _scrape_refusal(authorization: str, token: str) -> HttpResponse | None:
    """None if `authorization` (the Authorization header, "" if absent) carries `token` as a
    Bearer credential, else the 401 to send.

    RFC 7235 §2.1 / RFC 6750 §2.1: `Bearer` then one or more spaces then the token; the
    scheme is case-insensitive, blanks around the value are allowed. Anything else (no
    header, another scheme, the bare token with no scheme) is a request without Bearer
    credentials: 401 with `WWW-Authenticate: Bearer` and no error code (RFC 6750 §3.1); a
    Bearer token that is not `token` adds `error="invalid_token"`. The token is compared in
    constant time (hmac.compare_digest), whatever its length or content."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        if hmac.compare_digest(credentials.strip().encode(), token.encode()):
            return None
        challenge, message = 'Bearer realm="metrics", error="invalid_token"', "the scrape token is not this one"
    else:
        challenge, message = 'Bearer realm="metrics"', "metrics need the scrape token"
    return HttpResponse(
        f"{message}: send the header 'Authorization: Bearer <METRICS_TOKEN>'\n",
        status=401,
        content_type="text/plain",
        headers={"WWW-Authenticate": challenge},
    )


@require_GET
@never_cache
def metrics(request):
    token = settings.PELCRO_GATEWAY.get("METRICS_TOKEN", "").strip()
    if token and (refusal := _scrape_refusal(request.headers.get("Authorization", ""), token)):
        return refusal
    # Per-account labels only behind the token (set outside dev, system check E016).
    body = generate_latest(_process_registry()) + generate_latest(_limiter_registries[bool(token)])
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
