"""The shared per-account rate limiter (Redis), in front of every Core API request.

The Core API allows LIMIT requests per rolling WINDOW per account and answers 429 beyond.
Every web process and Celery worker asks Redis before each upstream request; one atomic
Lua script (`lua/acquire.lua`, Redis `TIME` as the only clock) keeps a rolling log of
requests per account and grants one only if fewer than `cap = LIMIT - SAFETY_MARGIN` lie
in the last WINDOW. So in ANY rolling window, all processes together start at most `cap`
requests. A token bucket alone could not promise that (capacity C refilling at R/s lets
C + WINDOW·R through in one window); the log also says exactly how long until the next
slot frees (`retry_after`), so callers sleep precisely instead of polling.

The upstream counts requests when they ARRIVE, and arrival jitter (queues, connection
set-up, a busy event loop) reorders grant times by milliseconds, enough for a burst to
land one window after the previous burst's stragglers. So a request's log entry is its
grant time plus `hold` while it is in flight, and drops to the moment its answer came
back (`request_finished`, via the gate's `finished`, which the client calls): every counted request
reached the upstream before its entry's time, every new one after its grant, so the
guarantee holds for arrivals too, whatever the delays (tests/test_ratelimit_gateway.py).

Background work (Celery exports) additionally has its own log capped at
`BACKGROUND_BUDGET_SHARE` of `cap`, so interactive tool calls always keep the rest.
An upstream 429 sets a block key until its Retry-After that every acquire honours.

Keys: `<REDIS_KEY_PREFIX>rl:{<account_id>}:<name>`; the hash tag keeps one account's keys
in one Redis Cluster slot. Every key expires on its own.

Redis down: the gate fails closed (`RateLimiterUnavailable`, no request is sent). The
client reconnects on the next call, so service resumes by itself when Redis is back. The
scripts go through `mcp_bridge.redis_pipe` (a pipelined client, far cheaper per command
than redis-py's asyncio client on this hot path); the dashboard and roll-ups use redis-py.
The limiter state lives only in Redis: run it with AOF persistence so a restart keeps
the last window (otherwise the upstream's own 429, honoured via the block key, is the
backstop).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import uuid
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from mcp_bridge import metrics
from mcp_bridge.core_api import RateLimited, UpstreamUnavailable
from mcp_bridge.per_loop import PerLoop
from mcp_bridge.redis_pipe import PipelinedRedis

logger = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "lua"
US = 1_000_000

# Usage counters and latency samples outlive the dashboard's hour and give the per-minute
# roll-up slack if beat is down for a while (the ring in usage.lua holds 120 minutes).
USAGE_TTL_SECONDS = 2 * 3600
USAGE_SLOTS = 120
LATENCY_MAX_SAMPLES = 20_000

# Connection errors mean "Redis is unreachable": fail closed. Other Redis errors (a bad
# script, wrong type) are bugs and surface as they are.
REDIS_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RateLimiterUnavailable(UpstreamUnavailable):
    """Redis could not be asked, so no Core API request was sent (fail closed)."""

    status = 503

    def __init__(self) -> None:
        self._init = ((), {})  # for pickling (core_api.CoreAPIError.__reduce__)
        super().__init__("rate limiter unavailable (Redis down); no request was sent", status=503)


# --- Configuration and keys -------------------------------------------------------------


@dataclass(frozen=True)
class LimitConfig:
    """The limit every account gets, from `settings.PELCRO_GATEWAY`."""

    limit: int
    window: float
    margin: int
    wait_budget: float
    background_share: float
    # The longest a granted request can take to reach the upstream (pool wait, connect and
    # write timeouts); an unfinished request (crashed caller) holds its slot that long.
    hold: float = 24.0

    @classmethod
    def from_settings(cls) -> "LimitConfig":
        conf = settings.PELCRO_GATEWAY
        config = cls(
            limit=int(conf["RATE_LIMIT"]),
            window=float(conf["RATE_WINDOW_SECONDS"]),
            margin=int(conf["RATE_SAFETY_MARGIN"]),
            wait_budget=float(conf["RATE_WAIT_BUDGET_SECONDS"]),
            background_share=float(conf["BACKGROUND_BUDGET_SHARE"]),
            hold=2 * float(conf["CORE_API_TIMEOUT"]) + float(conf["CORE_API_CONNECT_TIMEOUT"]) + 1.0,
        )
        config.validate()
        return config

    def validate(self) -> None:
        problems = []
        if self.limit < 1:
            problems.append("RATE_LIMIT must be at least 1")
        if not 0 <= self.margin < self.limit:
            problems.append("RATE_SAFETY_MARGIN must be at least 0 and below RATE_LIMIT")
        if self.window <= 0:
            problems.append("RATE_WINDOW_SECONDS must be positive")
        if self.wait_budget < 0:
            problems.append("RATE_WAIT_BUDGET_SECONDS must not be negative")
        if not 0 < self.background_share <= 1:
            problems.append("BACKGROUND_BUDGET_SHARE must be above 0 and at most 1")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def cap(self) -> int:
        """Requests granted per rolling window: the upstream limit minus the safety margin."""
        return self.limit - self.margin

    @property
    def background_cap(self) -> int:
        """Requests background jobs may start per rolling window (at least one)."""
        return max(1, math.floor(self.cap * self.background_share))

    @property
    def window_us(self) -> int:
        return round(self.window * US)

    @property
    def hold_us(self) -> int:
        return round(self.hold * US)

    @property
    def per_minute(self) -> float:
        """The cap as a requests-per-minute rate (the dashboard's limit line)."""
        return self.cap * 60.0 / self.window


@dataclass(frozen=True)
class AccountKeys:
    log: str
    background: str
    block: str
    waiters: str
    usage: str
    latency: str

    @classmethod
    def of(cls, account_id: int) -> "AccountKeys":
        return _account_keys(settings.REDIS_KEY_PREFIX, int(account_id))

    @property
    def limiter(self) -> list[str]:
        """The keys acquire.lua and peek.lua take, in their order."""
        return [self.log, self.background, self.block, self.waiters, self.usage]


@lru_cache(maxsize=4096)  # every Core API request needs its account's keys
def _account_keys(prefix: str, account_id: int) -> AccountKeys:
    base = f"{prefix}rl:{{{account_id}}}:"
    return AccountKeys(*(base + name for name in ("log", "bg", "block", "waiters", "usage", "latency")))


@cache
def _lua(name: str) -> str:
    """A script with the shared helpers (usage.lua) in front."""
    return (LUA_DIR / "usage.lua").read_text() + "\n" + (LUA_DIR / name).read_text()


# --- Redis connections ---------------------------------------------------------------------

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


@cache
def _sync_script(client: redis.Redis, name: str):
    return client.register_script(_lua(name))


# --- Decisions and state -------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float  # seconds until a slot frees; 0 when allowed
    now: float  # Redis time (epoch seconds) of the decision
    call_id: str  # the request's entry in the log (pass it to `request_finished`)


@dataclass(frozen=True)
class MinuteUsage:
    minute: int  # epoch minute (Redis time // 60)
    calls: int = 0
    background_calls: int = 0
    waits: int = 0
    rejections: int = 0
    upstream_429s: int = 0


@dataclass(frozen=True)
class LimiterState:
    """What `peek` sees for one account: nothing is written to get it."""

    now: float
    cap: int
    in_window: int
    background_in_window: int
    waiting: int
    blocked_for: float
    next_free_in: float  # seconds until the oldest request leaves the window (0 if none)
    minutes: dict[int, MinuteUsage]

    @property
    def remaining(self) -> int:
        return 0 if self.blocked_for > 0 else max(0, self.cap - self.in_window)

    def last_minutes(self, count: int) -> list[MinuteUsage]:
        """Per-minute usage for the `count` minutes up to now, oldest first, gaps as zeros."""
        current = int(self.now // 60)
        return [self.minutes.get(m, MinuteUsage(m)) for m in range(current - count + 1, current + 1)]

    def totals(self, minutes: int = 60) -> MinuteUsage:
        """Sums over the last `minutes` minutes (`minute` = the current one)."""
        rows = self.last_minutes(minutes)
        return MinuteUsage(
            minute=rows[-1].minute,
            calls=sum(r.calls for r in rows),
            background_calls=sum(r.background_calls for r in rows),
            waits=sum(r.waits for r in rows),
            rejections=sum(r.rejections for r in rows),
            upstream_429s=sum(r.upstream_429s for r in rows),
        )


def _usage_from_hash(raw: dict) -> dict[int, MinuteUsage]:
    fields = {_text(k): int(v) for k, v in raw.items()}
    minutes = {}
    for slot in range(USAGE_SLOTS):
        minute = fields.get(f"m{slot}")
        if minute is None:
            continue
        minutes[minute] = MinuteUsage(
            minute=minute,
            calls=fields.get(f"c{slot}", 0),
            background_calls=fields.get(f"b{slot}", 0),
            waits=fields.get(f"w{slot}", 0),
            rejections=fields.get(f"r{slot}", 0),
            upstream_429s=fields.get(f"u{slot}", 0),
        )
    return minutes


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _state_from_reply(reply: list, config: LimitConfig) -> LimiterState:
    now_us, in_window, bg_in_window, oldest_us, block_until_us, waiting, usage = reply
    flat = [_text(x) for x in usage]
    return LimiterState(
        now=now_us / US,
        cap=config.cap,
        in_window=int(in_window),
        background_in_window=int(bg_in_window),
        waiting=int(waiting),
        blocked_for=max(0, block_until_us - now_us) / US,
        next_free_in=(min(oldest_us - now_us, 0) + config.window_us) / US if oldest_us >= 0 else 0.0,
        minutes=_usage_from_hash(dict(zip(flat[0::2], flat[1::2]))),
    )


def peek_many(account_ids: list[int], config: LimitConfig | None = None) -> dict[int, LimiterState]:
    """The live state of several accounts in one round trip (blocking; for views).

    Raises RateLimiterUnavailable when Redis is down.
    """
    config = config or LimitConfig.from_settings()
    client = sync_redis()
    script = _sync_script(client, "peek.lua")
    try:
        # A pipeline loads the script first if Redis does not have it (e.g. after a restart).
        pipe = client.pipeline(transaction=False)
        for account_id in account_ids:
            script(keys=AccountKeys.of(account_id).limiter, args=[config.window_us], client=pipe)
        replies = pipe.execute()
    except REDIS_DOWN_ERRORS:
        raise RateLimiterUnavailable() from None
    return {aid: _state_from_reply(reply, config) for aid, reply in zip(account_ids, replies)}


def peek(account_id: int, config: LimitConfig | None = None) -> LimiterState:
    """The live state of one account (blocking). Writes nothing."""
    return peek_many([account_id], config)[account_id]


def latency_samples(account_id: int) -> dict[int, list[float]]:
    """Recorded upstream latencies (ms) of one account, by epoch minute (blocking)."""
    samples: dict[int, list[float]] = {}
    for raw in sync_redis().lrange(AccountKeys.of(account_id).latency, 0, -1):
        minute, _, ms = _text(raw).partition(":")
        samples.setdefault(int(minute), []).append(float(ms))
    return samples


def redis_time() -> float:
    """Redis's clock (epoch seconds): the one clock the limiter and the usage ring use."""
    seconds, micros = sync_redis().time()
    return seconds + micros / US


# --- The gate the Core API client passes ----------------------------------------------------


class RedisRateGate:
    """`core_api.RequestGate` backed by the shared Redis limiter.

    `acquire` returns when a request may start. When the next slot frees within the wait
    budget it sleeps exactly that long and asks again (shown as a waiting caller on the
    dashboard); otherwise it raises `RateLimited(retry_after)`. Redis down →
    `RateLimiterUnavailable`: fail closed, nothing is sent. The granted request's log
    entry is remembered in this task's context, so `finished` (which the client calls
    when the request is over) can close it.
    """

    def __init__(self, config: LimitConfig | None = None):
        self.config = config or LimitConfig.from_settings()

    async def acquire(self, account_id: int, *, background: bool = False) -> Decision:
        loop = asyncio.get_running_loop()
        call_id = uuid.uuid4().hex
        started = loop.time()
        waited = False
        kind = "background" if background else "interactive"
        while True:
            budget_left = max(0.0, self.config.wait_budget - (loop.time() - started))
            decision = await self.try_acquire(
                account_id, background=background, call_id=call_id, wait_budget=budget_left, already_waited=waited
            )
            if decision.allowed:
                metrics.limiter_decision("granted_after_wait" if waited else "granted", kind)
                _in_flight.set((account_id, decision.call_id))
                return decision
            if decision.retry_after > budget_left:
                metrics.limiter_decision("rejected", kind)
                raise RateLimited(decision.retry_after)
            if not waited:
                metrics.limiter_decision("wait", kind)
            waited = True
            # A millisecond past the exact moment, so the slot has surely left the window.
            await asyncio.sleep(decision.retry_after + 0.001)

    async def finished(self, account_id: int, seconds: float) -> None:
        # Not waited for: nothing here needs its answer. It goes out with the next command
        # on the connection (at most redis_pipe.UNANSWERED_DELAY later), ahead of it.
        await request_finished(account_id, seconds, wait=False)

    async def try_acquire(
        self,
        account_id: int,
        *,
        background: bool = False,
        call_id: str | None = None,
        wait_budget: float = 0.0,
        already_waited: bool = False,
    ) -> Decision:
        """Run the acquire script once: grant a slot now, or say how long until one frees.

        `wait_budget` only decides how a refusal is counted: a caller that will wait
        (retry_after within it) is a waiting caller, otherwise the refusal is a rejection.
        """
        call_id = call_id or uuid.uuid4().hex
        args = [
            self.config.cap,
            self.config.window_us,
            self.config.background_cap,
            1 if background else 0,
            call_id,
            round(wait_budget * US),
            1 if already_waited else 0,
            USAGE_TTL_SECONDS,
            self.config.hold_us,
        ]
        try:
            allowed, remaining, retry_us, now_us = await redis_for_loop().evalsha(
                _lua("acquire.lua"), AccountKeys.of(account_id).limiter, args
            )
        except REDIS_DOWN_ERRORS:
            metrics.limiter_decision("unavailable", "background" if background else "interactive")
            logger.warning("rate limiter unavailable (Redis down); refusing a request for account %s", account_id)
            raise RateLimiterUnavailable() from None
        return Decision(bool(allowed), int(remaining), retry_us / US, now_us / US, call_id)

    async def upstream_rate_limited(self, account_id: int, retry_after: float) -> None:
        """Block the account in every process until the upstream's Retry-After has passed."""
        metrics.UPSTREAM_429.inc()
        keys = AccountKeys.of(account_id)
        try:
            await redis_for_loop().evalsha(
                _lua("upstream_429.lua"), [keys.block, keys.usage], [round(max(retry_after, 1.0) * US), USAGE_TTL_SECONDS]
            )
        except REDIS_DOWN_ERRORS:
            # The next acquire fails closed anyway, so nothing is sent while Redis is down.
            logger.warning("could not record an upstream 429 for account %s: Redis down", account_id)


# The log entry of the request this task was last granted, for `request_finished`.
_in_flight: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar("pelcro_in_flight", default=None)


async def request_finished(
    account_id: int, seconds: float, call_id: str | None = None, *, wait: bool = True
) -> float | None:
    """The upstream answered the request this task was granted (or `call_id`): its log
    entry drops to now, and its latency is kept for the per-minute p50/p95 roll-up.
    Returns that moment (Redis time), or None if Redis could not be told or `wait` is
    False (the script is sent, its answer not awaited)."""
    if call_id is None:
        granted = _in_flight.get()
        if granted is not None and granted[0] == account_id:
            call_id = granted[1]
            _in_flight.set(None)
    keys = AccountKeys.of(account_id)
    try:
        finished_us = await redis_for_loop().evalsha(
            _lua("finish.lua"),
            [keys.log, keys.background, keys.latency],
            [call_id or "", f"{seconds * 1000:.1f}", LATENCY_MAX_SAMPLES, USAGE_TTL_SECONDS],
            wait=wait,
        )
    except REDIS_DOWN_ERRORS:
        # The entry keeps its in-flight time and frees its slot later: conservative.
        logger.debug("could not mark a request finished: Redis down")
        return None
    return finished_us / US if finished_us is not None else None
