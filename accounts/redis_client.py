"""The accounts app's Redis client: one owner for the login and registration throttles
(`accounts.throttle`), the auth epoch (`accounts.auth_epoch`) and the readiness check
(`pelcro_gateway.health`).

A blocking redis-py client with 1 s timeouts: a slow Redis counts as down, and every user
of it has a fallback for "down" (throttles are skipped, the epoch bump is logged and the
token cache's maximum age takes over, readiness answers 503). Its connection pool is
fork-safe. The MCP path's asyncio clients are `mcp_bridge.upstream.redis_clients`'.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings

TIMEOUT_SECONDS = 1.0


@lru_cache(maxsize=4)
def _client_for(url: str, cluster: bool) -> redis.Redis | redis.RedisCluster:
    options = {"socket_connect_timeout": TIMEOUT_SECONDS, "socket_timeout": TIMEOUT_SECONDS}
    if cluster:  # REDIS_URL names one node; the client finds the rest and follows MOVED/ASK
        return redis.RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def redis_client() -> redis.Redis | redis.RedisCluster:
    """This process's client for `settings.REDIS_URL`, a Redis Cluster client with
    `REDIS_CLUSTER` (one per URL, so a test that changes the setting gets its own)."""
    return _client_for(settings.REDIS_URL, settings.REDIS_CLUSTER)
