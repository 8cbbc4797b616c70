"""The process's Redis clients for the limiter, the usage read model and the token cache.

One owner: every part of `mcp_bridge` that talks to Redis gets its client here.
`redis_for_loop()` is the pipelined asyncio client of the running event loop (the hot
path: limiter scripts, auth epoch reads); `sync_redis()` is the blocking redis-py client
(dashboard, roll-ups). Connection errors (`REDIS_DOWN_ERRORS`) mean "Redis is
unreachable": callers fail closed.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from mcp_bridge.per_loop import PerLoop
from mcp_bridge.upstream.redis_pipe import PipelinedRedis

# Connection errors mean "Redis is unreachable": fail closed. Other Redis errors (a bad
# script, wrong type) are bugs and surface as they are.
REDIS_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _redis_timeout() -> float:
    return float(settings.PELCRO_GATEWAY.get("RATE_REDIS_TIMEOUT_SECONDS", 1.0))


# One retry on a fresh connection: a pooled connection broken by a Redis restart fails
# once, and the retry reconnects. No backoff: a down Redis must fail fast (fail closed).
def _redis_options() -> dict:
    return {
        "socket_connect_timeout": _redis_timeout(),
        "socket_timeout": _redis_timeout(),
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
    }


_async_clients: PerLoop[PipelinedRedis] = PerLoop(
    lambda: PipelinedRedis(settings.REDIS_URL, timeout=_redis_timeout())
)


def redis_for_loop() -> PipelinedRedis:
    """This event loop's Redis client (asyncio connections cannot cross loops)."""
    return _async_clients.get()


async def close_redis_for_loop() -> None:
    """Close this loop's Redis connection (before a short-lived loop, e.g. a Celery task's, ends)."""
    client = _async_clients.pop()
    if client is not None:
        await client.aclose()


@cache
def sync_redis() -> redis.Redis:
    """The process's blocking Redis client (dashboard, roll-ups); its pool is fork-safe."""
    return redis.Redis.from_url(settings.REDIS_URL, **_redis_options())
