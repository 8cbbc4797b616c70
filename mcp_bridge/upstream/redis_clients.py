"""The process's Redis clients for the limiter, the usage read model and the token cache.

One owner: every part of `mcp_bridge` that talks to Redis gets its client here, all of
them redis-py (replies parsed by hiredis), for a single Redis or a Redis Cluster:

- `redis_for_loop()`: the running event loop's asyncio client (the hot path: the
  limiter's scripts and the auth epoch read on every tool call);
- `sync_redis()`: the process's blocking client (dashboard, roll-ups, usage read model).

Configuration (settings, from the environment; README "Redis"):
- `REDIS_URL`: `redis://` or `rediss://` (TLS; the CA and client certificate go in the
  URL's query: `?ssl_ca_certs=/path/ca.pem&ssl_cert_reqs=required`), user, password and
  database in the URL. With `REDIS_CLUSTER=1` it names any one node of a Redis Cluster:
  the client finds the others, follows MOVED and ASK redirections and keeps the slot map
  up to date (the limiter keeps each account's keys in one slot with a `{id}` hash tag).
- `RATE_REDIS_TIMEOUT_SECONDS`: the deadline of every Redis call.

Faults, and why none can hang a call (issue 12): every call runs under an asyncio
deadline on top of redis-py's own connect and read timeouts, so a Redis that accepts and
then closes, answers nothing, is at `maxclients`, restarts or fails over ends in at most
the deadline with an error in `REDIS_DOWN_ERRORS`, which callers turn into their
fail-closed answer. A pooled connection broken by a restart is retried once on a fresh
one (redis-py's `Retry`); READONLY (the node became a replica after a failover) drops
the connection and is retried the same way; LOADING counts as down; NOSCRIPT (a flushed
or restarted script cache) sends the script whole (EVAL), which caches it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, ReadOnlyError
from redis.retry import Retry

from mcp_bridge.per_loop import PerLoop

# Every Redis error means "the limiter cannot be asked": fail closed. Besides connection
# errors and timeouts that includes READONLY, cluster errors (CLUSTERDOWN, TRYAGAIN, a
# slot not covered) and MOVED from a cluster node reached as a single Redis (a
# REDIS_CLUSTER setting that does not match the server). Callers log what it was.
REDIS_DOWN_ERRORS = (redis.exceptions.RedisError,)

# Connections this process's asyncio clients have opened (see `AsyncRedis.connection_number`).
_connections_opened = itertools.count(1)
_connection_number = 0


class _NotedConnection(redis.asyncio.Connection):
    """redis-py's connection, numbering each one opened (see `AsyncRedis.connection_number`)."""

    async def on_connect_check_health(self, *args, **kwargs) -> None:
        global _connection_number
        await super().on_connect_check_health(*args, **kwargs)
        _connection_number = next(_connections_opened)


class _NotedSSLConnection(redis.asyncio.SSLConnection):
    async def on_connect_check_health(self, *args, **kwargs) -> None:
        global _connection_number
        await super().on_connect_check_health(*args, **kwargs)
        _connection_number = next(_connections_opened)


# Connections per event loop (per node of a cluster): each concurrent call holds one while
# its command runs; beyond this a call fails at once (MaxConnectionsError, fail closed).
MAX_CONNECTIONS = 1000


def deadline_seconds() -> float:
    """The longest any Redis call may take (seconds), `RATE_REDIS_TIMEOUT_SECONDS`."""
    return float(settings.PELCRO_GATEWAY.get("RATE_REDIS_TIMEOUT_SECONDS", 1.0))


def cluster_mode() -> bool:
    return bool(getattr(settings, "REDIS_CLUSTER", False))


def _common_options(retry: Any) -> dict:
    timeout = deadline_seconds()
    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        # One retry on a fresh connection, no backoff: a connection broken by a restart
        # fails once and the retry reconnects; a Redis that is down fails fast.
        "retry": retry,
        "retry_on_error": [ReadOnlyError],
        "health_check_interval": 30,
    }


def new_async_client() -> redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster:
    """A new asyncio redis-py client for `REDIS_URL` (a cluster client with REDIS_CLUSTER).

    Its reads have no timeout of their own: `AsyncRedis` puts every call under one deadline
    (a second timer per read cost about a fifth of the client's CPU, bench/overhead.py).
    """
    options = {**_common_options(redis.asyncio.retry.Retry(NoBackoff(), 1)), "socket_timeout": None}
    tls = urlsplit(settings.REDIS_URL).scheme == "rediss"
    connection_class = _NotedSSLConnection if tls else _NotedConnection
    if cluster_mode():
        options.pop("retry_on_error")  # the cluster client re-routes READONLY itself
        client = redis.asyncio.cluster.RedisCluster.from_url(
            settings.REDIS_URL, max_connections=MAX_CONNECTIONS, **options
        )
        # The cluster client takes no connection class; its nodes (the seed node and those
        # it discovers) get ours.
        client.nodes_manager.connection_kwargs["connection_class"] = connection_class
        for node in client.nodes_manager.startup_nodes.values():
            node.connection_class = connection_class
        return client
    pool = redis.asyncio.ConnectionPool.from_url(settings.REDIS_URL, max_connections=MAX_CONNECTIONS, **options)
    pool.connection_class = connection_class  # set after from_url, which picks plain or TLS
    return redis.asyncio.Redis.from_pool(pool)  # closing the client closes the pool


def new_sync_client() -> redis.Redis | redis.cluster.RedisCluster:
    """A new blocking redis-py client for `REDIS_URL` (a cluster client with REDIS_CLUSTER)."""
    options = _common_options(Retry(NoBackoff(), 1))
    if cluster_mode():
        options.pop("retry_on_error")
        return redis.cluster.RedisCluster.from_url(settings.REDIS_URL, **options)
    return redis.Redis.from_url(settings.REDIS_URL, **options)


@contextlib.asynccontextmanager
async def deadline(seconds: float):
    """Raise redis-py's `TimeoutError` (a `REDIS_DOWN_ERRORS`) if the body takes longer."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise redis.exceptions.TimeoutError(f"Redis did not answer within {seconds} s") from None


class AsyncRedis:
    """One event loop's Redis client: commands and Lua scripts, each under the deadline.

    `execute(*command)` → the reply; `evalsha(script, keys, args)` runs a Lua script.
    Both raise a `REDIS_DOWN_ERRORS` within `timeout` seconds on any Redis fault.
    """

    def __init__(self, client=None, *, timeout: float | None = None):
        self.client = client if client is not None else new_async_client()
        self.timeout = deadline_seconds() if timeout is None else timeout
        self._shas: dict[str, str] = {}

    @property
    def connection_number(self) -> int:
        """The number (unique in this process) of the last connection opened: a new one may
        mean a restarted Redis, whose data may predate writes it missed while away, so the
        token cache trusts nothing read before a change of it after it."""
        return _connection_number

    async def execute(self, *command: Any) -> Any:
        """Send one command; its reply."""
        async with deadline(self.timeout):
            return await self.client.execute_command(*command)

    async def evalsha(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its SHA1 and return its reply; if Redis does not have it
        (NOSCRIPT: a restart, a failover, SCRIPT FLUSH) send it whole with EVAL, which also
        caches it again."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest()
        async with deadline(self.timeout):
            try:
                return await self.client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self.client.eval(script, len(keys), *keys, *args)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            async with deadline(self.timeout):
                await self.client.aclose()


_async_clients: PerLoop[AsyncRedis] = PerLoop(AsyncRedis)


def redis_for_loop() -> AsyncRedis:
    """This event loop's Redis client (asyncio connections cannot cross loops)."""
    return _async_clients.get()


async def close_redis_for_loop() -> None:
    """Close this loop's Redis client (before a short-lived loop, e.g. a Celery task's,
    ends, and at server shutdown)."""
    client = _async_clients.pop()
    if client is not None:
        await client.aclose()


@cache
def sync_redis() -> redis.Redis | redis.cluster.RedisCluster:
    """The process's blocking Redis client (dashboard, roll-ups); its pool is fork-safe."""
    return new_sync_client()
