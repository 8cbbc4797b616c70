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

Budgets (`gate.Budget`) are further logs inside the account's: the Open server's calls
count against one per site (`OPEN_SITE_RATE_LIMIT`) and one per subscriber
(`OPEN_SUBSCRIBER_RATE_LIMIT`) per window (`open_budgets`), checked and counted in the same
script as the account's limit, so one subscriber cannot use more than their own budget and
the subscribers of one site together never more than the site's, whatever the processes.

Keys: `<REDIS_KEY_PREFIX>rl:{<account_id>}:<name>`; the hash tag keeps one account's keys
in one Redis Cluster slot, so every script runs on one node. Every key expires on its own.

Redis down (or any Redis fault, within the deadline of `mcp_bridge.upstream.redis_clients`): the
gate fails closed (`RateLimiterUnavailable`, no request is sent). The client reconnects on
the next call, so service resumes by itself when Redis is back.

The limiter state lives only in Redis: run it with AOF persistence so a restart keeps the
last window. If Redis forgets it anyway (a restart without persistence, a failover to a
replica that lagged, a flush), the account's generation key is gone while this process
had used the account lately: acquire.lua then assumes the forgotten window was full and
lets only `RATE_SAFETY_MARGIN` requests start until a full window has passed (a process
that had not used the account lately cannot tell; the upstream's 429, honoured via the
block key, stays the backstop).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
import uuid
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path

import redis
from django.conf import settings

from mcp_bridge import metrics
from mcp_bridge.upstream.errors import RateLimited, RateLimiterUnavailable
from mcp_bridge.upstream.gate import Budget, RequestGate
from mcp_bridge.upstream.redis_clients import REDIS_DOWN_ERRORS, redis_for_loop

logger = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "lua"
US = 1_000_000

# Usage counters and latency samples outlive the dashboard's hour and give the per-minute
# roll-up slack if beat is down for a while (the ring in usage.lua holds 120 minutes).
USAGE_TTL_SECONDS = 2 * 3600
USAGE_SLOTS = 120
LATENCY_MAX_SAMPLES = 20_000


# --- Configuration and keys -------------------------------------------------------------


@dataclass(frozen=True)
class LimitConfig:
    """The limiter's settings, from `settings.PELCRO_GATEWAY`. `limit` is the default an
    account gets when its own is unknown (`RATE_LIMIT`, Pelcro's documented 120 per
    minute); `for_limit` gives the same settings for one account's own limit (its
    `api_core_rate_limit` from `GET /account`, CORE_API.md §2)."""

    limit: int
    window: float
    margin: int
    wait_budget: float
    background_share: float
    # The longest a granted request can take to reach the upstream (pool wait, connect and
    # write timeouts); an unfinished request (crashed caller) holds its slot that long.
    hold: float = 24.0

    @classmethod
    def from_settings(cls) -> LimitConfig:
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

    def for_limit(self, limit: int | None) -> LimitConfig:
        """These settings for an account whose own limit is `limit` requests per window
        (None: the default). Pelcro's window is a minute; tests compress it and the sandbox
        with it, so the number is not rescaled. The safety margin stays, but never leaves
        an account with fewer than one request per window."""
        if limit is None:
            return self
        return _config_for_limit(self, int(limit))

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


@lru_cache(maxsize=256)  # a handful of distinct limits, asked for on every request
def _config_for_limit(config: LimitConfig, limit: int) -> LimitConfig:
    if limit == config.limit:
        return config
    limit = max(1, limit)
    return replace(config, limit=limit, margin=min(config.margin, limit - 1))


@dataclass(frozen=True)
class AccountKeys:
    log: str
    background: str
    block: str
    waiters: str
    usage: str
    latency: str
    generation: str  # present while Redis keeps the window; until when a lost one holds back

    @classmethod
    def of(cls, account_id: int) -> AccountKeys:
        return _account_keys(settings.REDIS_KEY_PREFIX, int(account_id))

    @property
    def limiter(self) -> list[str]:
        """The keys acquire.lua and peek.lua take, in their order."""
        return [self.log, self.background, self.block, self.waiters, self.usage]

    def budget(self, budget: Budget) -> str:
        """The key of one of the account's budgets (same hash slot as the account's keys)."""
        return self.log.removesuffix("log") + "budget:" + budget.name


@lru_cache(maxsize=4096)  # every Core API request needs its account's keys
def _account_keys(prefix: str, account_id: int) -> AccountKeys:
    base = f"{prefix}rl:{{{account_id}}}:"
    return AccountKeys(*(base + name for name in ("log", "bg", "block", "waiters", "usage", "latency", "gen")))


@cache
def _lua(name: str) -> str:
    """A script with the shared helpers (usage.lua) in front."""
    return (LUA_DIR / "usage.lua").read_text() + "\n" + (LUA_DIR / name).read_text()


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
    limited_by: Budget | None = None  # refused by this budget rather than the account's limit


def open_budgets(site_id: int, customer_id: int | None = None) -> tuple[Budget, ...]:
    """The budgets an Open API call counts against, inside its account's limit: the site's
    (`OPEN_SITE_RATE_LIMIT` per window: every subscriber of the site together) and, for a
    call made for a subscriber, theirs (`OPEN_SUBSCRIBER_RATE_LIMIT`)."""
    conf = settings.PELCRO_GATEWAY
    site = Budget(
        f"open-site:{site_id}",
        int(conf["OPEN_SITE_RATE_LIMIT"]),
        f"the Open API calls of all subscribers of site {site_id}",
    )
    if customer_id is None:
        return (site,)
    subscriber = Budget(
        f"open-subscriber:{site_id}:{customer_id}", int(conf["OPEN_SUBSCRIBER_RATE_LIMIT"]), "this subscriber"
    )
    return (subscriber, site)


# --- The gate the Core API client passes ----------------------------------------------------


class RedisRateGate:
    """`upstream.gate.RequestGate` backed by the shared Redis limiter.

    `acquire` returns when a request may start. When the next slot frees within the wait
    budget it sleeps exactly that long and asks again (shown as a waiting caller on the
    dashboard); otherwise it raises `RateLimited(retry_after)`. Redis down →
    `RateLimiterUnavailable`: fail closed, nothing is sent. The granted request's log
    entry is remembered in this task's context, so `finished` (which the client calls
    when the request is over) can close it.
    """

    def __init__(self, config: LimitConfig | None = None):
        self.config = config or LimitConfig.from_settings()

    async def acquire(
        self, account_id: int, *, limit: int | None = None, background: bool = False, budgets: tuple[Budget, ...] = ()
    ) -> Decision:
        """`limit`: the account's own requests per window (None: the configured default);
        the request must also fit each of `budgets` (refused: `RateLimited` naming it)."""
        config = self.config.for_limit(limit)
        loop = asyncio.get_running_loop()
        call_id = uuid.uuid4().hex
        started = loop.time()
        waited = False
        kind = "background" if background else "interactive"
        while True:
            budget_left = max(0.0, config.wait_budget - (loop.time() - started))
            decision = await self.try_acquire(
                account_id,
                limit=limit,
                background=background,
                call_id=call_id,
                wait_budget=budget_left,
                already_waited=waited,
                budgets=budgets,
            )
            if decision.allowed:
                metrics.limiter_decision("granted_after_wait" if waited else "granted", kind)
                _in_flight.set((account_id, decision.call_id, budgets))
                return decision
            if decision.retry_after > budget_left:
                metrics.limiter_decision("rejected", kind)
                limited_by = decision.limited_by
                raise RateLimited(
                    decision.retry_after,
                    scope=None
                    if limited_by is None
                    else f"{limited_by.label} ({limited_by.cap} per {config.window:g} s)",
                )
            if not waited:
                metrics.limiter_decision("wait", kind)
            waited = True
            # A millisecond past the exact moment, so the slot has surely left the window.
            await asyncio.sleep(decision.retry_after + 0.001)

    async def finished(self, account_id: int, seconds: float) -> None:
        # Waited for (one round trip, under the Redis deadline): the slot's window then
        # starts before the caller has its answer, so a caller that waits a window after
        # it always finds the slot free. A failure is logged and leaves the slot held until
        # the in-flight hold ends (conservative).
        await request_finished(account_id, seconds)

    async def try_acquire(
        self,
        account_id: int,
        *,
        limit: int | None = None,
        background: bool = False,
        call_id: str | None = None,
        wait_budget: float = 0.0,
        already_waited: bool = False,
        budgets: tuple[Budget, ...] = (),
    ) -> Decision:
        """Run the acquire script once: grant a slot now, or say how long until one frees.
        A request with `budgets` must fit each of them too, and is counted in each.

        `wait_budget` only decides how a refusal is counted: a caller that will wait
        (retry_after within it) is a waiting caller, otherwise the refusal is a rejection.
        """
        config = self.config.for_limit(limit)
        call_id = call_id or uuid.uuid4().hex
        args = [
            config.cap,
            config.window_us,
            config.background_cap,
            1 if background else 0,
            call_id,
            round(wait_budget * US),
            1 if already_waited else 0,
            USAGE_TTL_SECONDS,
            config.hold_us,
            1 if _known_lately(account_id) else 0,
            config.margin,
            *(max(1, budget.cap) for budget in budgets),
        ]
        keys = AccountKeys.of(account_id)
        budget_keys = [keys.budget(budget) for budget in budgets]
        try:
            allowed, remaining, retry_us, now_us, window_lost, limited_by = await redis_for_loop().evalsha(
                _lua("acquire.lua"), [*keys.limiter, keys.generation, *budget_keys], args
            )
        except REDIS_DOWN_ERRORS as exc:
            metrics.limiter_decision("unavailable", "background" if background else "interactive")
            logger.warning(
                "rate limiter unavailable (%s: %s); refusing a request for account %s",
                type(exc).__name__,
                exc,
                account_id,
            )
            raise RateLimiterUnavailable() from None
        _seen[account_id] = time.monotonic()
        if window_lost:
            logger.warning(
                "Redis lost the limiter window of account %s (restart without persistence, failover "
                "or flush): at most %s requests until a full window has passed",
                account_id,
                config.margin,
            )
        return Decision(
            bool(allowed),
            int(remaining),
            retry_us / US,
            now_us / US,
            call_id,
            budgets[int(limited_by) - 1] if limited_by else None,
        )

    async def upstream_rate_limited(self, account_id: int, retry_after: float) -> None:
        """Block the account in every process until the upstream's Retry-After has passed."""
        metrics.UPSTREAM_429.inc()
        keys = AccountKeys.of(account_id)
        try:
            await redis_for_loop().evalsha(
                _lua("upstream_429.lua"),
                [keys.block, keys.usage],
                [round(max(retry_after, 1.0) * US), USAGE_TTL_SECONDS],
            )
        except REDIS_DOWN_ERRORS:
            # The next acquire fails closed anyway, so nothing is sent while Redis is down.
            logger.warning("could not record an upstream 429 for account %s: Redis down", account_id)


# When this process last had a decision for each account (time.monotonic()). A generation
# key gone while the account was in use here means Redis forgot its window (acquire.lua).
# Within half the key's life, so a key that merely expired is never taken for a loss.
_seen: dict[int, float] = {}


def _known_lately(account_id: int) -> bool:
    seen = _seen.get(account_id)
    return seen is not None and time.monotonic() - seen < USAGE_TTL_SECONDS / 2


# The log entry (and budgets) of the request this task was last granted, for `request_finished`.
_in_flight: contextvars.ContextVar[tuple[int, str, tuple[Budget, ...]] | None] = contextvars.ContextVar(
    "pelcro_in_flight", default=None
)


async def request_finished(
    account_id: int, seconds: float, call_id: str | None = None, budgets: tuple[Budget, ...] = ()
) -> float | None:
    """The upstream answered the request this task was granted (or `call_id`, counted in
    `budgets`): its log entries drop to now, and its latency is kept for the per-minute
    p50/p95 roll-up. Returns that moment (Redis time), or None if Redis could not be told."""
    if call_id is None:
        granted = _in_flight.get()
        if granted is not None and granted[0] == account_id:
            call_id, budgets = granted[1], granted[2]
            _in_flight.set(None)
    keys = AccountKeys.of(account_id)
    try:
        finished_us = await redis_for_loop().evalsha(
            _lua("finish.lua"),
            [keys.log, keys.background, keys.latency, *(keys.budget(budget) for budget in budgets)],
            [call_id or "", f"{seconds * 1000:.1f}", LATENCY_MAX_SAMPLES, USAGE_TTL_SECONDS],
        )
    except REDIS_DOWN_ERRORS as exc:
        # The entry keeps its in-flight time and frees its slot later: conservative.
        logger.warning("could not mark a request finished: %s: %s", type(exc).__name__, exc)
        return None
    return finished_us / US


def client_options(gate: RequestGate | None = None) -> dict:
    """Keyword arguments for an `http.UpstreamClient` built from settings: the shared Redis
    limiter as its gate (unless `gate` is given) and the `CORE_API_*` timeouts and retry
    knobs (seconds, counts), which the Core and Open clients share."""
    conf = settings.PELCRO_GATEWAY
    return {
        "gate": gate or RedisRateGate(),
        "timeout": conf["CORE_API_TIMEOUT"],
        "connect_timeout": conf["CORE_API_CONNECT_TIMEOUT"],
        "max_retries": conf["CORE_API_MAX_RETRIES"],
        "backoff_base": conf["CORE_API_BACKOFF_BASE"],
        "backoff_max": conf["CORE_API_BACKOFF_MAX"],
    }
