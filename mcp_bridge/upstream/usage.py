"""The limiter's usage read model: what the ops dashboard and roll-ups read (blocking).

Nothing here writes: `peek`/`peek_many` run `lua/peek.lua` (the live window, the block,
the waiting callers and the per-minute usage ring that `usage.lua` keeps), and
`latency_samples` reads the recorded upstream latencies. Redis down raises
`RateLimiterUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from mcp_bridge.upstream.errors import RateLimiterUnavailable
from mcp_bridge.upstream.limiter import US, USAGE_SLOTS, AccountKeys, LimitConfig, _sync_script
from mcp_bridge.upstream.redis_clients import REDIS_DOWN_ERRORS, sync_redis

logger = logging.getLogger(__name__)


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
        minutes=_usage_from_hash(dict(zip(flat[0::2], flat[1::2], strict=True))),
    )


def peek_many(
    account_ids: list[int], config: LimitConfig | None = None, limits: Mapping[int, int | None] | None = None
) -> dict[int, LimiterState]:
    """The live state of several accounts in one round trip (per cluster node; blocking;
    for views). `limits`: each account's own limit per window (`Account.rate_limit`), which
    its `cap` and `remaining` follow; accounts not in it get the default.

    Raises RateLimiterUnavailable when Redis cannot be asked.
    """
    config = config or LimitConfig.from_settings()
    client = sync_redis()
    script = _sync_script(client, "peek.lua")

    def run() -> list:
        pipe = client.pipeline(transaction=False)
        for account_id in account_ids:
            keys = AccountKeys.of(account_id).limiter
            pipe.evalsha(script.sha, len(keys), *keys, config.window_us)
        return pipe.execute()

    try:
        try:
            replies = run()
        except redis.exceptions.NoScriptError:  # a restarted Redis, or SCRIPT FLUSH
            client.script_load(script.script)  # on every master of a cluster
            replies = run()
    except REDIS_DOWN_ERRORS as exc:
        logger.warning("limiter state unavailable: %s: %s", type(exc).__name__, exc)
        raise RateLimiterUnavailable() from None
    limits = limits or {}
    return {
        aid: _state_from_reply(reply, config.for_limit(limits.get(aid)))
        for aid, reply in zip(account_ids, replies, strict=True)
    }


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
