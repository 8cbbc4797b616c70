"""Idempotent writes (README "Safe writes" → "Idempotency keys", issue 15 item 2).

A write call that carries an `idempotency_key` runs at most once per (connection, tool,
key) for 24 hours, across every gateway process: a repeat with the same arguments gets
the first call's outcome back (its `CallToolResult`, as it was) with no upstream request,
also while the first call is still running (the repeat waits for it); the same key with
other arguments is refused (`idempotency_key_reused`). `runtime.writes.run_write` drives
it in three steps, with the person's confirmation between the first and the third:

1. `IdempotentWrite.earlier_outcome()`: a finished (or running) call with this key;
2. (confirmation, `runtime.confirmation`: it may end the `tools/call` and come back in a
   second one, so nothing is claimed before it);
3. `IdempotentWrite.run(handler)`: claim the key atomically (or wait for the call that
   holds it), run the handler, keep or release the outcome.

Which outcomes are kept (the retry gets them) and which release the key (the retry runs):

- kept: a result (the write was applied), and every failure that says
  `may_have_been_applied: true` (timeout or 5xx after sending, an answer that cannot be
  read): repeating it could write twice. A call that crashed or was cancelled while it held
  the key is kept as such a failure too: nobody can tell what it sent.
- released: every other failure. The tools' failures say `may_have_been_applied` whenever
  a write may have reached the upstream (`runtime.failures`, `core.calls`), so the others
  wrote nothing: refused arguments, the rate limit reached before sending, the upstream
  unreachable before sending, a 4xx refusal. The retry with the same key runs again.

Store (Redis, shared by every process; redis-py through `redis_clients.redis_for_loop`):
one hash per (connection, tool, key), `<REDIS_KEY_PREFIX>idem:<connection_id>:<tool>:<key>`,
fields `args` (SHA-256 of the canonical JSON of the handler's arguments), `owner` (the
claiming call's random id), `lease` (Redis `TIME` in ms until which the owner is presumed
running) and `outcome` (JSON; absent while the owner runs). It expires 24 h after the
claim, and again 24 h after the outcome is kept. Every script touches that one key, so it
runs on one node of a Redis Cluster (REDIS_CLUSTER=1) with no hash tag. The claim is one
script (create the hash only if absent, with its TTL: SET NX's atomicity, for a hash).

A call whose key is held by another call whose lease ran out without an outcome (its
process stopped, or it is slower than any write can be) answers `outcome_unknown` with
`may_have_been_applied: true`: the key is never taken over, so a write is never doubled.

Redis down: a keyed write fails closed before anything is sent (`upstream_unavailable`);
a keyless write does not use the store. Redis lost after the write: the outcome is
logged as not kept and the call answers it; a repeat then waits for the lease and answers
`outcome_unknown`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from django.conf import settings
from mcp_types import CallToolResult

from mcp_bridge.models import ToolCall
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.results import ToolFailed, failure_result
from mcp_bridge.runtime.schemas import ToolFailure
from mcp_bridge.upstream.redis_clients import REDIS_DOWN_ERRORS, redis_for_loop

logger = logging.getLogger(__name__)

TTL_SECONDS = 24 * 3600  # how long a key and its outcome are kept (README "Safe writes")
POLL_FIRST, POLL_MAX = 0.02, 0.25  # seconds between reads while waiting for a running call

# The state of a key: nil if free, else {args, outcome or "", 1 if the lease ran out}.
_STATE = """
local v = redis.call('HMGET', KEYS[1], 'args', 'outcome', 'lease')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if v[1] then return {v[1], v[2] or '', (tonumber(v[3]) or 0) <= now and 1 or 0} end
"""
STATE_SCRIPT = _STATE + "return nil\n"
# Claim a free key (ARGV: args hash, owner, lease ms, TTL s): nil when claimed, else its state.
CLAIM_SCRIPT = (
    _STATE
    + """
redis.call('HSET', KEYS[1], 'args', ARGV[1], 'owner', ARGV[2], 'lease', now + tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return nil
"""
)
# Keep the owner's outcome (ARGV: owner, outcome JSON, TTL s): 1 if kept.
KEEP_SCRIPT = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'outcome', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# Release the owner's claim (ARGV: owner) unless an outcome is kept: 1 if released.
RELEASE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'outcome') == 1 then
  return 0
end
return redis.call('DEL', KEYS[1])
"""


def arguments_hash(args: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a handler's own arguments (a pydantic model,
    without `dry_run` / `idempotency_key`): sorted keys, no spaces, defaults filled in, so
    `{"a": 1}` and `{"a": 1, "b": null}` (b's default) are the same arguments."""
    data = args.model_dump(mode="json") if hasattr(args, "model_dump") else args
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def store_key(connection_id: int, tool: str, key: str) -> str:
    """The Redis key of one idempotency key (`key` matches IDEMPOTENCY_KEY_PATTERN)."""
    return f"{settings.REDIS_KEY_PREFIX}idem:{connection_id}:{tool}:{key}"


def lease_seconds() -> float:
    """The longest one write call can run (seconds): the limiter's wait, every attempt to
    connect with its backoff, and the one send. A call holding a key longer than this is
    presumed gone (`outcome_unknown`); waiting callers wait at most this long."""
    gateway = settings.PELCRO_GATEWAY
    attempts = gateway["CORE_API_MAX_RETRIES"] + 1
    connect = gateway["CORE_API_CONNECT_TIMEOUT"] + gateway["CORE_API_BACKOFF_MAX"]
    return gateway["RATE_WAIT_BUDGET_SECONDS"] + attempts * connect + gateway["CORE_API_TIMEOUT"] + 5.0


def written_nothing(result: CallToolResult) -> bool:
    """Whether an outcome proves the write did not happen, so the key is released: a
    failure that does not say `may_have_been_applied` (module docstring)."""
    structured = result.structured_content or {}
    return bool(result.is_error) and structured.get("may_have_been_applied") is not True


@dataclass
class _State:
    args: str
    outcome: str  # "" while the owner runs
    lease_over: bool


def _state(reply: Any) -> _State | None:
    if not reply:
        return None
    args, outcome, over = reply
    return _State(_text(args), _text(outcome), int(over) == 1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class IdempotentWrite:
    """One write call with an idempotency key (`for_call`)."""

    def __init__(self, spec: Any, call: CallContext, args: Any, key: str):
        self.tool = spec.name
        self.call = call
        self.key = key
        self.args = arguments_hash(args)
        self.redis_key = store_key(call.principal.connection_id, spec.name, key)
        self.owner = secrets.token_hex(16)

    async def earlier_outcome(self) -> CallToolResult | None:
        """Step 1: the outcome of an earlier call with this key and these arguments (waiting
        while it runs), or None if there is none (or it wrote nothing and freed the key).
        Raises `ToolFailed`: `idempotency_key_reused` for other arguments, the store down."""
        state = _state(await self._redis(STATE_SCRIPT))
        if state is None:
            return None
        return await self._answer(state)

    async def run(self, handler: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
        """Step 3: claim the key and run `handler()` once, keeping or releasing its outcome;
        or, if another call holds the key, that call's outcome."""
        deadline = time.monotonic() + 2 * lease_seconds()  # a key freed and claimed again, at most
        while True:
            state = _state(
                await self._redis(CLAIM_SCRIPT, self.args, self.owner, round(lease_seconds() * 1000), TTL_SECONDS)
            )
            if state is None:
                break  # claimed
            earlier = await self._answer(state)
            if earlier is not None:
                return earlier
            if time.monotonic() > deadline:  # freed again and again: never loop for ever
                raise self._unknown()
        return await self._run_claimed(handler)

    async def _run_claimed(self, handler: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
        record = self.call.record
        try:
            result = await handler()
        except ToolFailed as failed:
            await self._settle(failed.result(), failed.outcome, failed.failure.message)
            raise
        except BaseException as exc:
            # A crash or a cancelled call (the client went away) while it held the key:
            # what it sent is unknown, so the repeat is told so and nothing runs twice.
            failure = ToolFailure(
                error="outcome_unknown",
                message=f"The first {self.tool} call with this idempotency_key stopped before its outcome was known "
                f"({type(exc).__name__}); the write may have been applied. {_CHECK}",
                may_have_been_applied=True,
            )
            with anyio.CancelScope(shield=True):
                await self._settle(failure_result(failure), ToolCall.Outcome.ERROR, failure.message)
            raise
        await self._settle(result, record.outcome, record.error_message)
        return result

    async def _settle(self, result: CallToolResult, outcome: str, message: str) -> None:
        """Keep the outcome for the repeats, or release the key if nothing was written.
        A Redis fault here does not change this call's answer (the write is done): it is
        logged, and the key stays claimed until its lease runs out (`outcome_unknown`)."""
        try:
            if written_nothing(result):
                await self._redis(RELEASE_SCRIPT, self.owner)
                return
            kept = {
                "result": result.model_dump(mode="json", by_alias=True, exclude_none=True),
                "outcome": outcome,
                "message": message,
            }
            text = json.dumps(kept, separators=(",", ":"), ensure_ascii=False)
            if not await self._redis(KEEP_SCRIPT, self.owner, text, TTL_SECONDS):
                logger.warning("idempotency: the claim of a %s call was gone when its outcome came", self.tool)
        except ToolFailed:
            logger.warning("idempotency: the outcome of a %s call was not kept (Redis unavailable)", self.tool)

    async def _answer(self, state: _State) -> CallToolResult | None:
        """What a call gets for a key already held: the kept outcome, a refusal for other
        arguments, or (running) that call's outcome once it is there. None: freed."""
        wait = POLL_FIRST
        deadline = time.monotonic() + lease_seconds() + 1.0
        while True:
            if state.args != self.args:
                raise ToolFailed(
                    ToolFailure(
                        error="idempotency_key_reused",
                        message=f"idempotency_key {self.key!r} was already used with other arguments for {self.tool} "
                        "through this connection (in the last 24 h). Nothing was sent. If this is a new action, use "
                        "a new key; if it is a retry of the earlier one, send exactly the earlier arguments "
                        "(list_recent_writes with this idempotency_key shows them).",
                    )
                )
            if state.outcome:
                return self._replay(state.outcome)
            if state.lease_over or time.monotonic() > deadline:
                raise self._unknown()
            await asyncio.sleep(wait)
            wait = min(POLL_MAX, wait * 2)
            state = _state(await self._redis(STATE_SCRIPT))
            if state is None:
                return None  # the running call wrote nothing and released the key

    def _replay(self, kept_text: str) -> CallToolResult:
        kept = json.loads(kept_text)
        record = self.call.record
        record.replayed = True
        if kept["outcome"] != ToolCall.Outcome.OK:
            record.fail(kept["message"], kept["outcome"])
        return CallToolResult.model_validate(kept["result"])

    def _unknown(self) -> ToolFailed:
        return ToolFailed(
            ToolFailure(
                error="outcome_unknown",
                message=f"An earlier {self.tool} call with idempotency_key {self.key!r} has not reported its outcome "
                f"within {round(lease_seconds())} s (its gateway process may have stopped); it may have been "
                f"applied, and this call sent nothing. {_CHECK}",
                may_have_been_applied=True,
            )
        )

    async def _redis(self, script: str, *args: Any) -> Any:
        """Run one of the scripts on this key; Redis down → `ToolFailed` (fail closed)."""
        try:
            return await redis_for_loop().evalsha(script, [self.redis_key], list(args))
        except REDIS_DOWN_ERRORS as exc:
            logger.warning("idempotency store unavailable (%s)", type(exc).__name__)
            raise ToolFailed(
                ToolFailure(
                    error="upstream_unavailable",
                    message="The idempotency store (Redis) is unavailable, so this write was not sent: a write with "
                    "an idempotency_key never runs unprotected. Try again shortly with the same key.",
                )
            ) from None


_CHECK = (
    "Before trying again, look with list_recent_writes (filter idempotency_key) and at the object it changes; "
    "to write again anyway, use a new idempotency_key."
)


def for_call(spec: Any, call: CallContext, args: Any, key: str | None) -> IdempotentWrite | None:
    """The idempotency of a write call (`spec` a `runtime.registry.ToolDef`, `args` the
    handler's own arguments), or None without a key (such a call runs as it is)."""
    return IdempotentWrite(spec, call, args, key) if key else None
